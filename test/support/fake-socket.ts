/** A scripted WebSocket for the client SDK's unit tests: the test plays the server. */
import type { WebSocketLike } from '../../client/transport.ts';

/** Pass the class as the client's `WebSocket`; script the server with accept, push and drop. */
export class FakeSocket implements WebSocketLike {
  /** Every socket the client opened, in order; reset it after each test. */
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Array<Record<string, unknown>> = [];
  closed: number | null = null;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000): void {
    this.closed = code;
    this.readyState = 3;
  }
  // Server side of the script:
  accept(epoch = 'e1'): void {
    this.readyState = 1;
    this.onopen?.({});
    this.push({ type: 'hello', protocol: 1, epoch, server: 'tidewire' });
  }
  push(...messages: unknown[]): void {
    this.onmessage?.({ data: JSON.stringify(messages) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

/** Lets the client's pending promise callbacks run. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

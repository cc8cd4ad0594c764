/**
 * The server's end of a WebSocket for the session output's unit tests: records the frames written,
 * and lets the test set the socket's state and backlog (ws's `readyState` and `bufferedAmount`).
 */
import type { OutputSocket } from '../../services/distribution/session-output.ts';

export class FakeServerSocket implements OutputSocket {
  readonly OPEN = 1;
  /** 1: open; set 2 (closing) or 3 (closed) to see what the output does then. */
  readyState = 1;
  /** Bytes the socket has "not written yet": raise it to play a client that stops reading. */
  bufferedAmount = 0;
  /** Frames written, as text, in order. */
  readonly frames: string[] = [];
  /** Whether each frame was written as a binary frame. */
  readonly binary: boolean[] = [];
  /** When set, send() throws it (as ws does for a socket that is no longer open). */
  failWith: Error | null = null;

  send(data: string | Buffer, options: { binary: boolean }): void {
    if (this.failWith) throw this.failWith;
    this.frames.push(typeof data === 'string' ? data : data.toString('utf8'));
    this.binary.push(options.binary);
  }

  /** Each frame's messages, parsed. */
  messages(): Array<Array<Record<string, unknown>>> {
    return this.frames.map((f) => JSON.parse(f) as Array<Record<string, unknown>>);
  }
}

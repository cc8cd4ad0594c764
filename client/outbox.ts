/**
 * Paces what the client sends so it stays under the server's message rate limit: a client with
 * hundreds of subscriptions re-subscribing after a reconnect would otherwise be refused
 * (RATE_LIMITED) or, far past the limit, disconnected (4029).
 */

export interface Sink {
  send(text: string): void;
}

const WINDOW_MS = 1000;

export class Outbox {
  private queue: string[] = [];
  private sink: Sink | null = null;
  private windowStart = -Infinity;
  private sent = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Messages waiting for the rate window or for a connection. */
  get pending(): number {
    return this.queue.length;
  }

  /** Starts sending to `sink` (an open connection). */
  attach(sink: Sink): void {
    this.sink = sink;
    this.drain();
  }

  /** The connection is gone: what is waiting was for it and is dropped (re-subscribing rebuilds it). */
  detach(): void {
    this.sink = null;
    this.queue = [];
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  send(message: object): void {
    this.queue.push(JSON.stringify(message));
    this.drain();
  }

  private drain(): void {
    if (!this.sink || this.timer !== null) return;
    while (this.queue.length > 0) {
      const t = this.now();
      if (t - this.windowStart >= WINDOW_MS) {
        this.windowStart = t;
        this.sent = 0;
      }
      if (this.sent >= this.perSecond) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.drain();
        }, this.windowStart + WINDOW_MS - t);
        return;
      }
      this.sent++;
      this.sink.send(this.queue.shift()!);
    }
  }
}

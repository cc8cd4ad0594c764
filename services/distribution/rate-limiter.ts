/**
 * Counts a session's client messages per one-second window. Past `limit` a message is refused
 * (RATE_LIMITED); past `limit × ABUSE_FACTOR` in one window the session is closed (4029), so a
 * flooding client costs the server a bounded amount of parsing and replies.
 */
export const ABUSE_FACTOR = 10;
const WINDOW_MS = 1000;

export type RateVerdict = 'ok' | 'limited' | 'abuse';

export class RateLimiter {
  private windowStart = -Infinity;
  private count = 0;

  constructor(
    readonly limit: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one message and says what to do with it. */
  hit(): RateVerdict {
    const t = this.now();
    if (t - this.windowStart >= WINDOW_MS) {
      this.windowStart = t;
      this.count = 0;
    }
    const n = ++this.count;
    if (n <= this.limit) return 'ok';
    return n > this.limit * ABUSE_FACTOR ? 'abuse' : 'limited';
  }
}

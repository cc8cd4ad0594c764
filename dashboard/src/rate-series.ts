/** Update counts per second over a bounded window (a ring of one-second buckets). */

export class RateSeries {
  private readonly counts: Float64Array;
  /** The second (epoch seconds) that bucket `head` holds. */
  private headSecond = -1;
  private head = 0;

  /** @param seconds how many seconds are kept, e.g. 300 for five minutes. */
  constructor(readonly seconds: number) {
    if (!Number.isInteger(seconds) || seconds < 2) throw new RangeError('seconds must be an integer ≥ 2');
    this.counts = new Float64Array(seconds);
  }

  record(nowMs: number, n = 1): void {
    this.advance(Math.floor(nowMs / 1000));
    this.counts[this.head] += n;
  }

  /** Updates in the last complete second. */
  lastSecond(nowMs: number): number {
    this.advance(Math.floor(nowMs / 1000));
    return this.counts[(this.head - 1 + this.seconds) % this.seconds];
  }

  /** Complete seconds, oldest first (the running second is left out: it would always dip). */
  values(nowMs: number): number[] {
    this.advance(Math.floor(nowMs / 1000));
    const out: number[] = [];
    for (let i = 1; i < this.seconds; i++) out.push(this.counts[(this.head + i) % this.seconds]);
    return out;
  }

  private advance(second: number): void {
    if (this.headSecond < 0) {
      this.headSecond = second;
      return;
    }
    const steps = Math.min(second - this.headSecond, this.seconds);
    for (let i = 0; i < steps; i++) {
      this.head = (this.head + 1) % this.seconds;
      this.counts[this.head] = 0;
    }
    if (second > this.headSecond) this.headSecond = second;
  }
}

/**
 * The hand-off log (services/handoff/handoff-log.ts, our own interface) as an array, for unit
 * tests of what is built on it; the Kafka-backed one is tested against a real broker.
 * - `hold`: appends wait for `release()`;
 * - `failNext`: the next append fails;
 * - `loseAcks`: appends take their records but never resolve (the process died before Kafka's
 *   acknowledgement reached it).
 */
import type { HandoffLog, HandoffLogReadHandler, HandoffLogRecord, HandoffLogWriter } from '../../services/handoff/handoff-log.ts';

export class MemoryLog implements HandoffLog {
  readonly records: HandoffLogRecord[] = [];
  readonly appends: number[] = [];
  hold = false;
  failNext: Error | null = null;
  loseAcks = false;
  private waiting: Array<() => void> = [];
  private readers = new Set<{ next: number; handler: HandoffLogReadHandler }>();

  release(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }

  async openWriter(): Promise<HandoffLogWriter> {
    return {
      append: async (values) => {
        if (this.hold) await new Promise<void>((r) => this.waiting.push(r));
        if (this.failNext) throw this.failNext;
        this.appends.push(values.length);
        const base = this.records.length;
        for (const v of values) this.records.push({ offset: String(this.records.length), value: v });
        for (const r of this.readers) this.feed(r);
        if (this.loseAcks) await new Promise<never>(() => {});
        return String(base);
      },
      close: async () => {},
    };
  }

  async end(): Promise<string> {
    return String(this.records.length);
  }

  async openReader(offset: string, handler: HandoffLogReadHandler) {
    const r = { next: Number(offset), handler };
    this.readers.add(r);
    this.feed(r);
    return { position: { next: offset, end: String(this.records.length) }, close: async () => void this.readers.delete(r) };
  }

  private feed(r: { next: number; handler: HandoffLogReadHandler }): void {
    const records = this.records.slice(r.next);
    r.next = this.records.length;
    if (records.length > 0) r.handler.records(records, String(this.records.length));
  }
}

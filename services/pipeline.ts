/** Applies connector updates to topic state and hands the resulting batches to distribution. */
import type { IngestSink } from '../core/ingest.ts';
import type { Handoff } from './handoff/handoff.ts';
import type { TopicStore } from './topics/topic-store.ts';
import type { ChangeBatch, TopicChange, TopicUpdate } from '../core/topic.ts';

export interface PipelineOptions {
  /**
   * Count the wire bytes of every change by type, and what each delta would have cost as a full
   * value (the `tidewire_wire_bytes_total` metrics). Costs a UTF-8 byte count of each change's
   * wire text, once per change (not per client); the store reports what the value would have
   * cost. Default false.
   */
  measureWireBytes?: boolean;
}

/** Wire bytes (UTF-8) of the changes emitted, once per change, before fan-out. */
export interface WireBytes {
  value: number;
  delta: number;
  removal: number;
  /** What the deltas would have cost sent as `value` messages: `delta` / this is the saving. */
  deltaAsValue: number;
}

export class Pipeline implements IngestSink {
  /** Row changes applied and changes emitted, for metrics and benchmarks. */
  updatesApplied = 0;
  changesEmitted = 0;
  /** Changes emitted by type; counted only with `measureWireBytes`. */
  readonly changesByType: Record<TopicChange['type'], number> = { value: 0, delta: 0, removal: 0 };
  /** Counted only with `measureWireBytes`. */
  readonly wireBytes: WireBytes = { value: 0, delta: 0, removal: 0, deltaAsValue: 0 };
  private readonly measure: boolean;

  constructor(
    readonly store: TopicStore,
    readonly handoff: Handoff,
    options: PipelineOptions = {},
  ) {
    this.measure = options.measureWireBytes ?? false;
  }

  apply(updates: readonly TopicUpdate[]): Promise<void> {
    this.updatesApplied += updates.length;
    return this.publish(this.store.apply(updates));
  }

  removeSource(source: string): Promise<void> {
    return this.publish(this.store.removeSource(source));
  }

  private publish(batch: ChangeBatch | null): Promise<void> {
    if (!batch) return Promise.resolve();
    this.changesEmitted += batch.changes.length;
    if (this.measure) this.count(batch.changes);
    return this.handoff.publish(batch);
  }

  private count(changes: readonly TopicChange[]): void {
    const bytes = this.wireBytes;
    for (const c of changes) {
      const n = Buffer.byteLength(c.wire);
      this.changesByType[c.type]++;
      bytes[c.type] += n;
      if (c.type === 'delta') {
        // A delta wire is `{"type":"delta",<path, version>,"patch":<patch>}`; the value message it
        // stands for differs only in its last member, the value after the change.
        const patchAt = c.wire.indexOf(',"patch":') + 9;
        const patchBytes = n - Buffer.byteLength(c.wire.slice(0, patchAt)) - 1;
        bytes.deltaAsValue += n - patchBytes + c.valueBytes;
      }
    }
  }
}

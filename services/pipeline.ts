/** Applies connector updates to topic state and hands the resulting batches to distribution. */
import type { IngestSink } from '../connectors/source.ts';
import type { Handoff } from './handoff/handoff.ts';
import type { ChangeBatch, TopicStore, TopicUpdate } from './topics/topic-store.ts';

export class Pipeline implements IngestSink {
  /** Row changes applied and changes emitted, for metrics and benchmarks. */
  updatesApplied = 0;
  changesEmitted = 0;

  constructor(
    readonly store: TopicStore,
    readonly handoff: Handoff,
  ) {}

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
    return this.handoff.publish(batch);
  }
}

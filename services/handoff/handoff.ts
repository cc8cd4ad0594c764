/**
 * The one seam between the ingest side (connectors, mapping, topic state) and the distribution
 * side. In-process today; in scale-out mode the same interface is backed by a Kafka topic, with
 * distribution nodes materialising their own TopicView from it.
 */
import type { ChangeBatch, TopicView } from '../topics/topic-store.ts';

export interface Handoff {
  /** The state the distribution side serves new subscriptions from. */
  readonly view: TopicView;
  /** Ingest side: hand over one batch. Resolves once the batch can no longer be lost by the hand-off. */
  publish(batch: ChangeBatch): Promise<void>;
  /** Distribution side: receive every batch, in order. Returns an unsubscribe function. */
  subscribe(listener: (batch: ChangeBatch) => void): () => void;
}

/** Delivers batches synchronously to listeners in the same process. */
export class InProcessHandoff implements Handoff {
  private readonly listeners = new Set<(batch: ChangeBatch) => void>();

  constructor(readonly view: TopicView) {}

  publish(batch: ChangeBatch): Promise<void> {
    for (const l of this.listeners) l(batch);
    return Promise.resolve();
  }

  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * The one seam between the ingest side (connectors, mapping, topic state) and the distribution
 * side. In-process today; in scale-out mode the same interface is backed by a Kafka topic, with
 * distribution nodes materialising their own TopicView from it.
 */
import type { ChangeBatch, TopicView } from '../../core/topic.ts';

export interface Handoff {
  /** The state the distribution side serves new subscriptions from. */
  readonly view: TopicView;
  /** Ingest side: hand over one batch. Resolves once the batch can no longer be lost by the hand-off. */
  publish(batch: ChangeBatch): Promise<void>;
  /** Distribution side: receive every batch, in order. Returns an unsubscribe function. */
  subscribe(listener: (batch: ChangeBatch) => void): () => void;
}

export interface InProcessHandoffOptions {
  /**
   * A listener threw while taking a batch (a bug on the distribution side). The batch has already
   * been applied to the store, so it still goes to every other listener and publish() resolves:
   * one listener's failure never fails ingest. Default: a process warning (code
   * TIDEWIRE_HANDOFF_LISTENER_FAILED); the service passes its logger.
   */
  readonly onListenerError?: (err: unknown, batch: ChangeBatch) => void;
}

function warn(err: unknown, batch: ChangeBatch): void {
  process.emitWarning(`a hand-off listener failed on batch ${batch.seq}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, {
    code: 'TIDEWIRE_HANDOFF_LISTENER_FAILED',
  });
}

/** Delivers batches synchronously to listeners in the same process, each isolated from the others. */
export class InProcessHandoff implements Handoff {
  private readonly listeners = new Set<(batch: ChangeBatch) => void>();
  private readonly onListenerError: (err: unknown, batch: ChangeBatch) => void;

  constructor(
    readonly view: TopicView,
    options: InProcessHandoffOptions = {},
  ) {
    this.onListenerError = options.onListenerError ?? warn;
  }

  publish(batch: ChangeBatch): Promise<void> {
    for (const l of this.listeners) {
      try {
        l(batch);
      } catch (err) {
        this.onListenerError(err, batch);
      }
    }
    return Promise.resolve();
  }

  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * The one seam between the ingest side (connectors, mapping, topic state) and the distribution
 * side. In-process today; in scale-out mode the same interface is backed by a Kafka topic, with
 * distribution nodes materialising their own TopicView from it.
 */
import type { RowWrite, SourcePosition } from '../../core/ingest.ts';
import type { ChangeBatch, TopicView } from '../../core/topic.ts';

/** What a batch came from: kept with it by a hand-off that keeps a log, for the ingest node's own restart. */
export interface BatchOrigin {
  /** The position the batch brings its source to. */
  readonly position?: SourcePosition;
  /** The row index writes of the changes it came from. */
  readonly rows?: readonly RowWrite[];
}

/** Where a hand-off's log stands after a batch (a position to store with it), or null: a hand-off that keeps no log. */
export type HandoffReceipt = SourcePosition | null;

export interface Handoff {
  /** The state the distribution side serves new subscriptions from. */
  readonly view: TopicView;
  /**
   * True when the hand-off keeps a log an ingest node restarts from (Kafka): publish resolves with
   * the log's position after the batch, and durable state stores a batch only once it has it, so
   * the stored state is never ahead of the log (see log-recovery.ts).
   */
  readonly keepsLog: boolean;
  /**
   * Ingest side: hand over one batch and what it came from. Resolves once the batch can no longer
   * be lost by the hand-off, with the log's position after it (null without a log).
   */
  publish(batch: ChangeBatch, origin?: BatchOrigin): Promise<HandoffReceipt>;
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

const NO_RECEIPT: Promise<HandoffReceipt> = Promise.resolve(null);

/** Delivers batches synchronously to listeners in the same process, each isolated from the others. */
export class InProcessHandoff implements Handoff {
  readonly keepsLog = false;
  private readonly listeners = new Set<(batch: ChangeBatch) => void>();
  private readonly onListenerError: (err: unknown, batch: ChangeBatch) => void;

  constructor(
    readonly view: TopicView,
    options: InProcessHandoffOptions = {},
  ) {
    this.onListenerError = options.onListenerError ?? warn;
  }

  publish(batch: ChangeBatch): Promise<HandoffReceipt> {
    for (const l of this.listeners) {
      try {
        l(batch);
      } catch (err) {
        this.onListenerError(err, batch);
      }
    }
    return NO_RECEIPT;
  }

  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

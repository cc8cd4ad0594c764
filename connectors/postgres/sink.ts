/**
 * Calls into the IngestSink. A refusal there is not a Postgres failure and must never be retried
 * as one (nor acknowledged): it becomes PG_SINK_FAILED.
 */
import { errorMessage } from '../../core/errors.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import type { IngestSink, RowWrite, SourcePosition, TransactionPart } from '../../core/ingest.ts';
import { PostgresConnectorError } from './errors.ts';

/** Hands updates to the sink; a refusal becomes PG_SINK_FAILED (never mistaken for a Postgres failure). */
export async function applyToSink(sink: IngestSink, updates: readonly TopicUpdate[], position?: SourcePosition, rows?: readonly RowWrite[], part?: TransactionPart): Promise<void> {
  try {
    await sink.apply(updates, position, rows, part);
  } catch (err) {
    throw new PostgresConnectorError('PG_SINK_FAILED', `the topic store refused ${updates.length} updates: ${errorMessage(err)}`, { cause: err });
  }
}

/** Removes a source's topics through the sink; a refusal becomes PG_SINK_FAILED. */
export async function removeFromSink(sink: IngestSink, source: string, position?: SourcePosition): Promise<void> {
  try {
    await sink.removeSource(source, position);
  } catch (err) {
    throw new PostgresConnectorError('PG_SINK_FAILED', `the topic store refused to remove ${source}: ${errorMessage(err)}`, { cause: err });
  }
}

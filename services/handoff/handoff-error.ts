/**
 * The hand-off's errors, one class with a stable `code` (core/errors.ts):
 * - `HANDOFF_RECORD_INVALID`: a record of the hand-off topic is not a well-formed hand-off record
 *   (damaged, or written by something else: the topic must be tidewire's alone);
 * - `HANDOFF_RECORD_VERSION`: a record in a format this node does not read (a newer tidewire wrote it);
 * - `HANDOFF_PART_ORDER`: the parts of a batch do not follow each other (one is missing, or reading
 *   started inside a batch);
 * - `HANDOFF_CHANGE_TOO_LARGE`: one change does not fit in a record under the byte limit;
 * - `HANDOFF_PUBLISH_FAILED`: Kafka did not take a batch; the publisher takes no more after it;
 * - `HANDOFF_READ_ONLY`: publish() on an edge, whose batches come from the log;
 * - `HANDOFF_LOG_BEHIND`: an ingest node's stored state was published further than the log now reaches (the topic was recreated);
 * - `HANDOFF_KAFKA`: a Kafka operation failed (`retriable` from kafkajs' own classification).
 */
import { TidewireError } from '../../core/errors.ts';

export type HandoffErrorCode =
  | 'HANDOFF_RECORD_INVALID'
  | 'HANDOFF_RECORD_VERSION'
  | 'HANDOFF_PART_ORDER'
  | 'HANDOFF_CHANGE_TOO_LARGE'
  | 'HANDOFF_PUBLISH_FAILED'
  | 'HANDOFF_READ_ONLY'
  | 'HANDOFF_LOG_BEHIND'
  | 'HANDOFF_KAFKA';

export class HandoffError extends TidewireError {
  declare readonly code: HandoffErrorCode;
  constructor(code: HandoffErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'HandoffError';
  }
}

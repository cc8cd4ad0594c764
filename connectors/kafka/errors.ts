/**
 * Errors of the Kafka connector. Each has a stable code; whether retrying can help is decided by
 * the client implementation from the Kafka error class or protocol error code, never from text.
 * Messages say what to check.
 */
import { TidewireError } from '../../core/errors.ts';

export type KafkaErrorCode =
  /** No broker answered (refused, reset, timed out, DNS). Retriable. */
  | 'KAFKA_UNREACHABLE'
  /** SASL authentication was rejected. */
  | 'KAFKA_AUTH_FAILED'
  /** The brokers' ACLs refuse this client access to a topic, the group or the cluster. */
  | 'KAFKA_NOT_AUTHORIZED'
  /** A configured topic (or the dead-letter topic) does not exist, or a pattern matches none. */
  | 'KAFKA_TOPIC_MISSING'
  /** The sink refused updates; the offsets covering them were not committed. */
  | 'KAFKA_SINK_FAILED'
  /** Any other error reported by the brokers or the client. */
  | 'KAFKA_ERROR'
  /** stop() was called while start() was still running. */
  | 'KAFKA_STOPPED';

export class KafkaConnectorError extends TidewireError {
  declare readonly code: KafkaErrorCode;

  constructor(code: KafkaErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'KafkaConnectorError';
  }
}

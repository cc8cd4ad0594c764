/**
 * The dead-letter topic: a bad record is copied there (key, value and headers as they were) with
 * headers saying what was wrong and where it came from, so it can be inspected and replayed.
 */
import type { KafkaHeaders, KafkaMessage, KafkaProducer, ProducedMessage } from './kafka-client.ts';
import type { BadRecordReason } from './record-mapper.ts';

export const DEAD_LETTER_HEADERS = {
  error: 'tidewire-error',
  topic: 'tidewire-source-topic',
  partition: 'tidewire-source-partition',
  offset: 'tidewire-source-offset',
} as const;

export interface BadRecord {
  readonly topic: string;
  readonly partition: number;
  readonly message: KafkaMessage;
  readonly reason: BadRecordReason;
  readonly detail: string;
}

/** The dead-letter copy of a bad record: `tidewire-error` is `<reason>: <detail>`. */
export function deadLetterMessage(r: BadRecord): ProducedMessage {
  const headers: Record<string, KafkaHeaders[string]> = { ...r.message.headers };
  headers[DEAD_LETTER_HEADERS.error] = `${r.reason}: ${r.detail}`;
  headers[DEAD_LETTER_HEADERS.topic] = r.topic;
  headers[DEAD_LETTER_HEADERS.partition] = String(r.partition);
  headers[DEAD_LETTER_HEADERS.offset] = r.message.offset;
  return { key: r.message.key, value: r.message.value, headers };
}

export class DeadLetterTopic {
  constructor(
    readonly topic: string,
    private readonly producer: KafkaProducer,
  ) {}

  /** Resolves once every record is acknowledged; only then may their offsets be committed. */
  async send(records: readonly BadRecord[]): Promise<void> {
    if (records.length > 0) await this.producer.send(this.topic, records.map(deadLetterMessage));
  }
}

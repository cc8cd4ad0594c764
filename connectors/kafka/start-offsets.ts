/**
 * What the connector reads, decided once at start: the topics (exact names must exist; patterns
 * match what exists now), and for each partition where reading begins (earliest, or the group's
 * committed offset) and where the initial catch-up ends (the high watermark now).
 */
import type { Logger } from 'pino';
import { KafkaConnectorError } from './errors.ts';
import type { KafkaAdmin } from './kafka-client.ts';
import type { KafkaSettings } from './kafka-options.ts';
import { PartitionPositions } from './partition-positions.ts';
import type { RecordMapper } from './record-mapper.ts';

/** Patterns never match internal topics (`__consumer_offsets`, ...) or the dead-letter topic. */
export function resolveTopics(settings: KafkaSettings, mappers: readonly RecordMapper[], existing: readonly string[], log: Logger): string[] {
  const have = new Set(existing);
  const dlq = settings.deadLetterTopic;
  if (dlq !== undefined && !have.has(dlq)) {
    throw new KafkaConnectorError('KAFKA_TOPIC_MISSING', `kafka.deadLetterTopic: Kafka has no topic "${dlq}": create it, or fix the name`);
  }
  const out = new Set<string>();
  settings.topics.forEach((spec, i) => {
    if (spec.topic !== undefined) {
      if (!have.has(spec.topic)) throw new KafkaConnectorError('KAFKA_TOPIC_MISSING', `kafka.topics.${i}.topic: Kafka has no topic "${spec.topic}": create it, or fix the name`);
      if (spec.topic === dlq) throw new KafkaConnectorError('KAFKA_TOPIC_MISSING', `kafka.topics.${i}.topic: "${dlq}" is the dead-letter topic; tidewire does not consume it`);
      out.add(spec.topic);
      return;
    }
    const matched = existing.filter((t) => !t.startsWith('__') && t !== dlq && mappers[i].matches(t));
    if (matched.length === 0) log.warn({ pattern: spec.pattern }, `kafka.topics.${i}.pattern matches no topic yet; topics created later are picked up at the next start`);
    for (const t of matched) out.add(t);
  });
  if (out.size === 0) throw new KafkaConnectorError('KAFKA_TOPIC_MISSING', 'kafka.topics: no Kafka topic matches any mapping: create the topics, or fix the names and patterns');
  return [...out].sort();
}

/** Start and end offsets of every partition of `topics`. */
export async function readStartOffsets(admin: KafkaAdmin, settings: KafkaSettings, topics: readonly string[]): Promise<PartitionPositions> {
  const positions = new PartitionPositions();
  for (const topic of topics) {
    const committed = settings.startFrom === 'committed' ? await admin.fetchCommittedOffsets(settings.groupId, topic) : null;
    for (const w of await admin.fetchWatermarks(topic)) {
      const low = Number(w.low);
      const high = Number(w.high);
      const c = committed?.get(w.partition);
      // A committed offset outside the log (retention deleted it, the topic was recreated) is ignored.
      const start = c !== undefined && Number(c) >= low && Number(c) <= high ? Number(c) : low;
      positions.add(topic, w.partition, start, high);
    }
  }
  return positions;
}

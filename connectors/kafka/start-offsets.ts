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
import type { RecordMapper, TopicMappings } from './record-mapper.ts';

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

/**
 * The mappings' heartbeat topics that exist, each with the consumed Kafka topics it vouches for
 * (those whose first matching mapping names it). A missing one is only logged: Debezium creates
 * it with its first heartbeat, and until tidewire follows it the feeds it vouches for show stale.
 */
export function resolveHeartbeats(
  settings: KafkaSettings,
  mappings: TopicMappings,
  topics: readonly string[],
  existing: readonly string[],
  log: Logger,
): Map<string, string[]> {
  const have = new Set(existing);
  const consumed = new Set(topics);
  const out = new Map<string, string[]>();
  settings.topics.forEach((spec, i) => {
    const hb = spec.heartbeatTopic;
    if (hb === undefined) return;
    if (consumed.has(hb)) throw new KafkaConnectorError('KAFKA_TOPIC_MISSING', `kafka.topics.${i}.heartbeatTopic: "${hb}" is also a mapped topic; a heartbeat topic's records never become topics, so map it in one role only`);
    if (!have.has(hb)) {
      log.warn({ heartbeatTopic: hb }, `kafka.topics.${i}.heartbeatTopic: Kafka has no topic "${hb}" yet (Debezium creates it with its first heartbeat, when heartbeat.interval.ms is set); it is followed from the next start`);
      return;
    }
    const feeds = out.get(hb) ?? [];
    for (const t of topics) if (mappings.forTopic(t) === mappings.mappers[i] && !feeds.includes(t)) feeds.push(t);
    out.set(hb, feeds);
  });
  return out;
}

/**
 * Start and end offsets of every partition of `topics`; `heartbeats` are read from their end
 * (only heartbeats from now on say anything), with nothing to catch up with.
 */
export async function readStartOffsets(admin: KafkaAdmin, settings: KafkaSettings, topics: readonly string[], heartbeats: readonly string[] = []): Promise<PartitionPositions> {
  const positions = new PartitionPositions();
  for (const topic of heartbeats) {
    for (const w of await admin.fetchWatermarks(topic)) positions.add(topic, w.partition, Number(w.high), Number(w.high));
  }
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

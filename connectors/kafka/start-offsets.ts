/**
 * What the connector reads, decided once at start: the topics (exact names must exist; patterns
 * match what exists now), how each one starts, and for each partition where reading begins and
 * where the initial catch-up ends (the high watermark now).
 *
 * With durable state a Kafka topic whose mapping is unchanged resumes at the offsets stored with
 * the state (the next offset to read, per partition); one whose stored offsets cannot be trusted
 * (outside the log: retention deleted records never applied, or the topic was recreated), whose
 * mapping changed, whose topics are in the state without a stored fingerprint, or whose path needs
 * the key → path index (which lives in memory only) is re-read from its earliest offset, diffed
 * against the state.
 */
import type { Logger } from 'pino';
import type { SourceCheckpoints } from '../../core/ingest.ts';
import { KafkaConnectorError } from './errors.ts';
import type { KafkaAdmin, PartitionWatermarks } from './kafka-client.ts';
import type { KafkaSettings } from './kafka-options.ts';
import { PartitionPositions, type StartedFrom, positionName } from './partition-positions.ts';
import { type RecordMapper, type TopicMappings, kafkaSourceName } from './record-mapper.ts';

/** How one Kafka topic starts. */
export type TopicStart =
  /** Nothing of it is in the state: read from `startFrom`, each batch applied as read. */
  | { readonly mode: 'fresh' }
  /** From the offsets stored with the state (partitions without one: from `startFrom`). */
  | { readonly mode: 'resume' }
  /** From the earliest offset, held back and diffed against the state once caught up. */
  | { readonly mode: 'reread'; readonly why: string };

export interface StartOffsets {
  readonly positions: PartitionPositions;
  /** How each consumed Kafka topic starts (every one `fresh` without durable state). */
  readonly starts: ReadonlyMap<string, TopicStart>;
}

/** What the start needs from durable state and from each topic's mapping. */
export interface ResumeContext {
  readonly checkpoints: SourceCheckpoints;
  /** The fingerprint of the mapping a topic's records use, and whether its path names value fields. */
  readonly mapping: (topic: string) => { readonly fingerprint: string; readonly pathUsesValue: boolean; readonly rowIndexComplete: boolean };
}

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
 * Where one partition starts: a stored offset inside the log (low ≤ offset ≤ high) wins; then,
 * with `startFrom: committed`, the group's committed offset inside the log; else the earliest.
 */
export function chooseStartOffset(
  w: { readonly low: number; readonly high: number },
  stored: number | null,
  committed: number | null,
): { readonly offset: number; readonly from: StartedFrom } {
  if (stored !== null && inLog(stored, w)) return { offset: stored, from: 'stored' };
  if (committed !== null && inLog(committed, w)) return { offset: committed, from: 'committed' };
  return { offset: w.low, from: 'earliest' };
}

/**
 * How one Kafka topic starts with durable state (see the file comment): `stored` gives the
 * offset text stored for a partition, or null.
 */
export function planTopicStart(input: {
  readonly watermarks: readonly { readonly partition: number; readonly low: number; readonly high: number }[];
  readonly stored: (partition: number) => string | null;
  readonly fingerprint: string;
  readonly storedFingerprint: string | undefined;
  readonly pathUsesValue: boolean;
  /** Whether the row index a path naming value fields needs is stored complete with the state. */
  readonly rowIndexComplete: boolean;
  /** Whether the state holds topics of this Kafka topic; asked only when no fingerprint matches. */
  readonly holdsTopics: () => boolean;
}): TopicStart {
  if (input.storedFingerprint !== input.fingerprint) {
    if (input.storedFingerprint !== undefined) return { mode: 'reread', why: 'its mapping changed' };
    if (!input.holdsTopics()) return { mode: 'fresh' };
    return { mode: 'reread', why: 'the state holds topics of it but no fingerprint of its mapping' };
  }
  if (input.pathUsesValue && !input.rowIndexComplete) {
    return { mode: 'reread', why: 'its path names value fields, and the key → path index tombstones need is not stored complete with the state (a state written before it was stored, or a re-read cut short): it is rebuilt from the log' };
  }
  for (const w of input.watermarks) {
    const text = input.stored(w.partition);
    if (text === null) continue;
    const offset = parseOffset(text);
    if (offset === null || !inLog(offset, w)) {
      return { mode: 'reread', why: `partition ${w.partition}: the stored offset ${text} is outside its log (${w.low} to ${w.high}): retention deleted records never applied, or the topic was recreated` };
    }
  }
  return { mode: 'resume' };
}

/**
 * Start and end offsets of every partition of `topics`; `heartbeats` are read from their end
 * (only heartbeats from now on say anything), with nothing to catch up with. With `resume`
 * (durable state) each topic starts as planTopicStart decides.
 */
export async function readStartOffsets(
  admin: KafkaAdmin,
  settings: KafkaSettings,
  topics: readonly string[],
  heartbeats: readonly string[] = [],
  resume?: ResumeContext,
): Promise<StartOffsets> {
  const positions = new PartitionPositions();
  const starts = new Map<string, TopicStart>();
  for (const topic of heartbeats) {
    for (const w of await admin.fetchWatermarks(topic)) positions.add(topic, w.partition, Number(w.high), Number(w.high), 'end');
  }
  const fingerprints = resume?.checkpoints.fingerprints() ?? {};
  for (const topic of topics) {
    const watermarks = (await admin.fetchWatermarks(topic)).map(numeric);
    const cp = resume?.checkpoints;
    const mapping = resume?.mapping(topic);
    const start: TopicStart =
      cp && mapping
        ? planTopicStart({
            watermarks,
            stored: (partition) => cp.stored(positionName(topic, partition)),
            fingerprint: mapping.fingerprint,
            storedFingerprint: fingerprints[kafkaSourceName(topic)],
            pathUsesValue: mapping.pathUsesValue,
            rowIndexComplete: mapping.rowIndexComplete,
            holdsTopics: () => holdsTopicsOf(cp, kafkaSourceName(topic)),
          })
        : { mode: 'fresh' };
    starts.set(topic, start);
    const committed = settings.startFrom === 'committed' && start.mode !== 'reread' ? await admin.fetchCommittedOffsets(settings.groupId, topic) : null;
    for (const w of watermarks) {
      const storedText = start.mode === 'resume' ? cp!.stored(positionName(topic, w.partition)) : null;
      const c = committed?.get(w.partition);
      const { offset, from } = chooseStartOffset(w, storedText === null ? null : parseOffset(storedText), c === undefined ? null : Number(c));
      positions.add(topic, w.partition, offset, w.high, from);
    }
  }
  return { positions, starts };
}

function holdsTopicsOf(cp: SourceCheckpoints, source: string): boolean {
  if (!cp.holdsTopics()) return false;
  for (const _ of cp.topicsOf(source)) return true;
  return false;
}

function numeric(w: PartitionWatermarks): { partition: number; low: number; high: number } {
  return { partition: w.partition, low: Number(w.low), high: Number(w.high) };
}

function inLog(offset: number, w: { readonly low: number; readonly high: number }): boolean {
  return offset >= w.low && offset <= w.high;
}

/** A stored offset: decimal digits only (what this connector writes); anything else is null. */
function parseOffset(text: string): number | null {
  if (!/^\d{1,16}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

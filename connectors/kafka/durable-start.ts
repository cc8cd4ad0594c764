/**
 * What a start with durable state does before the first record is read, once start-offsets.ts has
 * decided how each Kafka topic starts: the topics of Kafka topics no longer consumed are removed;
 * a topic read fresh has its mapping's fingerprint stored first (so a crash part-way through
 * resumes it: its positions are stored with its updates); topics to re-read get their re-read.
 * Row indexes (paths naming value fields) start empty and complete for a fresh topic, and over,
 * incomplete until the re-read is applied, for a re-read one.
 */
import type { Logger } from 'pino';
import type { IngestSink, SourceCheckpoints } from '../../core/ingest.ts';
import type { KafkaSettings } from './kafka-options.ts';
import { kafkaMappingFingerprint } from './mapping-fingerprint.ts';
import type { PartitionPositions } from './partition-positions.ts';
import { type TopicMappings, kafkaSourceName } from './record-mapper.ts';
import type { TopicStart } from './start-offsets.ts';
import { TopicReread } from './topic-reread.ts';

/**
 * The fingerprint of the mapping `topic`'s records use, whether its path names value fields, and
 * whether the row index such a path needs is stored complete with the state.
 */
export function topicMapping(settings: KafkaSettings, mappings: TopicMappings, topic: string): { fingerprint: string; pathUsesValue: boolean; rowIndexComplete: boolean } {
  const mapper = mappings.forTopic(topic)!; // consumed topics all come from the mappings
  const spec = settings.topics[mappings.mappers.indexOf(mapper)];
  return { fingerprint: kafkaMappingFingerprint(spec, settings.maxValueBytes), pathUsesValue: mapper.pathUsesValue, rowIndexComplete: mapper.rowIndex(topic)?.complete ?? true };
}

/** Returns the re-read of this start, or null when no topic needs one. */
export async function prepareDurableStart(input: {
  readonly checkpoints: SourceCheckpoints;
  readonly sink: IngestSink;
  readonly settings: KafkaSettings;
  readonly mappings: TopicMappings;
  readonly starts: ReadonlyMap<string, TopicStart>;
  readonly positions: PartitionPositions;
  readonly log: Logger;
}): Promise<TopicReread | null> {
  const { checkpoints, sink, starts, log } = input;
  const consumed = new Set([...starts.keys()].map(kafkaSourceName));
  const gone = Object.keys(checkpoints.fingerprints()).filter((source) => source.startsWith(kafkaSourceName('')) && !consumed.has(source));
  const record: Record<string, string | null> = {};
  for (const source of gone) {
    await sink.removeSource(source);
    // Its stored key → path index too; a topic consumed again is read as new.
    checkpoints.rowIndex(source)?.clear(false);
    record[source] = null;
    log.info({ source }, 'removed the topics of a Kafka topic no longer consumed');
  }
  const reread = new Set<string>();
  const rereadFingerprints: Record<string, string> = {};
  const resumed: string[] = [];
  for (const [topic, start] of starts) {
    const { fingerprint } = topicMapping(input.settings, input.mappings, topic);
    const mapper = input.mappings.forTopic(topic)!;
    if (start.mode === 'fresh') {
      record[kafkaSourceName(topic)] = fingerprint;
      mapper.startFresh(topic);
    } else if (start.mode === 'resume') resumed.push(topic);
    else {
      mapper.startRead(topic);
      reread.add(topic);
      rereadFingerprints[kafkaSourceName(topic)] = fingerprint;
      log.warn({ topic, why: start.why }, `re-reading Kafka topic ${topic} from its earliest offset, diffed against the stored state: ${start.why}`);
    }
  }
  if (Object.keys(record).length > 0) await checkpoints.setFingerprints(record);
  if (resumed.length > 0) {
    const from = [...input.positions.all()].filter((p) => p.from === 'stored').map((p) => `${p.topic}/${p.partition}@${p.start}`);
    log.info({ topics: resumed, from }, 'resuming Kafka topics from the offsets stored with the state');
  }
  return reread.size > 0 ? new TopicReread(reread, checkpoints, rereadFingerprints) : null;
}

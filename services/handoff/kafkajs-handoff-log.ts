/**
 * The hand-off log on a Kafka topic through kafkajs 2.2: the only file of services/handoff that
 * imports kafkajs (the connectors' KafkaClient is for sources and lives a floor below the app).
 *
 * - One partition: the log's order is the order of the ingest node's batches, which is what lets
 *   an edge apply them as they come and a delta name its base by `version - 1`. Partitioning (by
 *   path, for more than one broker's worth of writes) would need per-topic order only, a batch
 *   split across partitions re-joined on the edge (a source transaction is one frame), and a
 *   position per partition; not needed while one partition carries far more than ingest produces.
 * - The writer is an idempotent producer with acks=all and one request in flight: a retried send
 *   is never written twice nor out of order. Not Kafka transactions yet: within one producer
 *   session the idempotent producer gives the order and the no-duplicate guarantee, and a batch's
 *   parts are joined by the reader; fencing a zombie ingest node (issue #15 item 3) is what
 *   transactions (a transactional id) will add.
 * - A reader is a consumer of its own (a group of one, nothing committed: an edge keeps its own
 *   position) that seeks to the offset asked for before its first fetch. A retriable failure
 *   (kafkajs' classification: a broker restarting, a group coordinator still loading on a new
 *   broker) restarts it, and the join that follows seeks to the record after the last one handed
 *   on, so nothing is read twice or skipped; only a failure kafkajs does not retry stops it.
 */
import { randomUUID } from 'node:crypto';
import { type Admin, Kafka, type LogEntry, Partitioners, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import type { HandoffLog, HandoffLogReader, HandoffLogReadHandler, HandoffLogWriter } from './handoff-log.ts';
import { HandoffError } from './handoff-error.ts';
import { DEFAULT_MAX_RECORD_BYTES } from './log-record.ts';

export interface KafkaHandoffLogOptions {
  readonly brokers: readonly string[];
  /** The hand-off topic: tidewire's alone (no other producer may write to it). */
  readonly topic: string;
  /** Default `tidewire-handoff`. */
  readonly clientId?: string;
  /** kafkajs' warnings and errors go here (`client: 'kafkajs'`). Absent: kafkajs says nothing. */
  readonly logger?: Logger;
  /** Largest record value the ingest node writes (log-record.ts); the topic's max.message.bytes follows it. */
  readonly maxRecordBytes?: number;
  /** How long the topic keeps records (its retention.ms). Default 7 days; -1 keeps them forever. */
  readonly retentionMs?: number;
  /** Replicas of the topic when it is created. Default: the broker's default.replication.factor. */
  readonly replicationFactor?: number;
}

export const HANDOFF_LOG_DEFAULTS = { clientId: 'tidewire-handoff', retentionMs: 7 * 24 * 3600 * 1000 } as const;

/** A connection attempt that hangs is reported within this; requests within REQUEST_TIMEOUT_MS. */
const CONNECTION_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** An idle fetch returns after this: how long a new record can wait on an edge that is not busy. */
const MAX_WAIT_MS = 100;
/**
 * Room for a record batch's own header and per-record overhead above `maxRecordBytes`: the broker
 * checks max.message.bytes against the whole batch, and the writer sends up to maxRecordBytes of
 * values per request.
 */
const BATCH_OVERHEAD_BYTES = 64 * 1024;

export function kafkaHandoffLog(options: KafkaHandoffLogOptions): KafkaHandoffLog {
  return new KafkaHandoffLog(options);
}

export class KafkaHandoffLog implements HandoffLog {
  private readonly kafka: Kafka;
  readonly topic: string;
  private readonly maxRecordBytes: number;
  private readonly retentionMs: number;
  private readonly replicationFactor: number;

  constructor(options: KafkaHandoffLogOptions) {
    if (options.brokers.length === 0) throw new RangeError('the hand-off log needs at least one Kafka broker (host:port)');
    if (options.topic === '') throw new RangeError('the hand-off log needs a topic name');
    this.topic = options.topic;
    this.maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    this.retentionMs = options.retentionMs ?? HANDOFF_LOG_DEFAULTS.retentionMs;
    this.replicationFactor = options.replicationFactor ?? -1;
    if (!Number.isSafeInteger(this.maxRecordBytes) || this.maxRecordBytes < 1024) throw new RangeError(`maxRecordBytes must be an integer ≥ 1024, not ${this.maxRecordBytes}`);
    if (!Number.isSafeInteger(this.retentionMs) || this.retentionMs < -1) throw new RangeError(`retentionMs must be an integer ≥ -1, not ${this.retentionMs}`);
    const log = options.logger?.child({ client: 'kafkajs', topic: options.topic });
    this.kafka = new Kafka({
      clientId: options.clientId ?? HANDOFF_LOG_DEFAULTS.clientId,
      brokers: [...options.brokers],
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      // kafkajs' default backoff grows to 30 s between tries: a consumer crashed by a broker
      // restart would wait that long to come back. Short tries here; the producer's appends are
      // retried for as long as needed by KafkaHandoff, and a consumer restarts after a retriable crash.
      retry: RETRY,
      logLevel: log ? logLevel.WARN : logLevel.NOTHING,
      logCreator: () => (entry: LogEntry) => log?.warn({ namespace: entry.namespace, error: entry.log.error }, entry.log.message),
    });
  }

  /**
   * Creates the topic when it does not exist: one partition, deletion by retention, records up to
   * maxRecordBytes. An existing topic is checked: more than one partition is refused (the log's
   * order would be lost), with what to do.
   */
  async ensureTopic(): Promise<void> {
    await this.withAdmin(async (admin) => {
      if (!(await this.exists(admin))) {
        await kafkaCall(`creating the hand-off topic ${this.topic}`, () =>
          admin.createTopics({
            waitForLeaders: true,
            topics: [
              {
                topic: this.topic,
                numPartitions: 1,
                replicationFactor: this.replicationFactor,
                configEntries: [
                  { name: 'cleanup.policy', value: 'delete' },
                  { name: 'retention.ms', value: String(this.retentionMs) },
                  { name: 'max.message.bytes', value: String(this.maxRecordBytes + BATCH_OVERHEAD_BYTES) },
                ],
              },
            ],
          }),
        );
      }
      const partitions = await this.partitions(admin);
      if (partitions !== 1) {
        throw new HandoffError(
          'HANDOFF_KAFKA',
          `the hand-off topic ${this.topic} has ${partitions} partitions; it must have exactly 1 (the log is ordered): delete it and let tidewire create it, or name another topic`,
        );
      }
    });
  }

  /**
   * What the topic is, changing nothing (`tidewire check`): whether it exists, its partitions, and
   * the high watermark of partition 0. Throws HandoffError when Kafka cannot be reached.
   */
  inspect(): Promise<{ readonly exists: boolean; readonly partitions: number; readonly end: string }> {
    return this.withAdmin(async (admin) => {
      if (!(await this.exists(admin))) return { exists: false, partitions: 0, end: '0' };
      return { exists: true, partitions: await this.partitions(admin), end: await this.endOffset(admin) };
    });
  }

  /** The high watermark of the topic's one partition; a topic that does not exist says who creates it. */
  end(): Promise<string> {
    return this.withAdmin(async (admin) => {
      if (!(await this.exists(admin))) {
        throw new HandoffError('HANDOFF_KAFKA', `the hand-off topic ${this.topic} does not exist: start the ingest node first (it creates the topic), or check handoff.kafka.topic`, { retriable: true });
      }
      return this.endOffset(admin);
    });
  }

  /** Runs `work` with a connected admin client, disconnected after. */
  private async withAdmin<T>(work: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.kafka.admin();
    await kafkaCall('connecting to Kafka', () => admin.connect());
    try {
      return await work(admin);
    } finally {
      await admin.disconnect();
    }
  }

  private async exists(admin: Admin): Promise<boolean> {
    return (await kafkaCall('listing topics', () => admin.listTopics())).includes(this.topic);
  }

  private async partitions(admin: Admin): Promise<number> {
    const meta = await kafkaCall('reading the hand-off topic', () => admin.fetchTopicMetadata({ topics: [this.topic] }));
    return meta.topics[0]?.partitions.length ?? 0;
  }

  private async endOffset(admin: Admin): Promise<string> {
    const offsets = await kafkaCall('reading the hand-off topic\'s end offset', () => admin.fetchTopicOffsets(this.topic));
    return offsets.find((p) => p.partition === 0)?.high ?? '0';
  }

  async openWriter(): Promise<HandoffLogWriter> {
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await kafkaCall('connecting the hand-off producer', () => producer.connect());
    const topic = this.topic;
    return {
      async append(values) {
        const sent = await kafkaCall(`writing to the hand-off topic ${topic}`, () =>
          producer.send({ topic, acks: -1, messages: values.map((value) => ({ partition: 0, key: null, value })) }),
        );
        const base = sent.find((m) => m.partition === 0)?.baseOffset;
        return base !== undefined && /^(0|[1-9][0-9]*)$/.test(base) ? base : null;
      },
      close: () => producer.disconnect(),
    };
  }

  async openReader(offset: string, handler: HandoffLogReadHandler): Promise<HandoffLogReader> {
    if (!/^(0|[1-9][0-9]*)$/.test(offset)) throw new RangeError(`a hand-off log offset is a decimal integer ≥ 0, not ${JSON.stringify(offset)}`);
    const topic = this.topic;
    const consumer = this.kafka.consumer({
      // A group of its own: nothing is committed, the reader's position is its owner's.
      groupId: `tidewire-edge-${randomUUID()}`,
      maxWaitTimeInMs: MAX_WAIT_MS,
      allowAutoTopicCreation: false,
    });
    const position = { next: offset, end: '0' };
    consumer.on(consumer.events.GROUP_JOIN, () => consumer.seek({ topic, partition: 0, offset: position.next }));
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) handler.failed(toHandoffError(e.payload.error, 'reading the hand-off topic'));
    });
    await kafkaCall('connecting the hand-off consumer', () => consumer.connect());
    await kafkaCall(`subscribing to the hand-off topic ${topic}`, () => consumer.subscribe({ topics: [topic], fromBeginning: true }));
    await kafkaCall('starting the hand-off consumer', () =>
      consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          position.end = batch.highWatermark;
          if (batch.messages.length === 0) return;
          handler.records(batch.messages, batch.highWatermark);
          position.next = String(BigInt(batch.lastOffset()) + 1n);
        },
      }),
    );
    return { position, close: () => consumer.disconnect() };
  }
}

/**
 * kafkajs' retry for the hand-off log's clients: 100 ms doubling to 1 s, 5 tries (about 3 s) before
 * a call fails. kafkajs warns that limiting an idempotent producer's retries "may invalidate EoS
 * guarantees": a send that gave up hands its sequence numbers back (sendMessages rolls them back on
 * a failed produce), so the next send would reuse them for other records. KafkaHandoff never sends
 * other records next: it retries the same records in the same order until they are taken, so they
 * carry the same sequence numbers and the broker drops a copy of an append that had landed.
 */
const RETRY = { initialRetryTime: 100, maxRetryTime: 1_000, retries: 5 } as const;

async function kafkaCall<T>(doing: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toHandoffError(err, doing);
  }
}

/**
 * kafkajs' own classification decides `retriable` (never the message text): an error it marks
 * retriable, or one it gave up retrying (KafkaJSNumberOfRetriesExceeded) caused by such an error.
 */
function toHandoffError(err: unknown, doing: string): Error {
  if (err instanceof HandoffError) return err;
  let retriable = false;
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { retriable?: unknown }).retriable === true) retriable = true;
  }
  return new HandoffError('HANDOFF_KAFKA', `Kafka failed while ${doing}: ${err instanceof Error ? err.message : String(err)}`, { retriable, cause: err });
}

/**
 * KafkaClient on kafkajs 2.2. The only file that imports kafkajs. It fixes the consumer settings
 * the connector relies on (manual commits, no auto-resolve, one partition handled at a time, no
 * restart of its own after a crash: the connector restarts with its own backoff) and turns
 * kafkajs errors into KafkaConnectorError by error class and protocol error code.
 */
import net from 'node:net';
import tls from 'node:tls';
import {
  type Admin,
  type ConfigResourceTypes,
  type Consumer,
  type ISocketFactory,
  Kafka,
  type LogEntry,
  Partitioners,
  type Producer,
  type SASLOptions,
  logLevel,
} from 'kafkajs';
import type { Logger } from 'pino';
import { TidewireError, errorMessage } from '../../core/errors.ts';
import { KafkaConnectorError } from './errors.ts';
import type {
  BatchHandler,
  ConnectionErrorEvent,
  ConsumerEvent,
  ConsumerOptions,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  PartitionWatermarks,
  ProducedMessage,
  TopicPartitionOffset,
} from './kafka-client.ts';

export interface KafkajsClientOptions {
  brokers: readonly string[];
  clientId: string;
  ssl: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** kafkajs' own log lines go here with `client: 'kafkajs'` (warnings and errors; info at debug). */
  logger: Logger;
}

/** Socket connect timeout: a broker that does not accept within this is reported as unreachable. */
const CONNECTION_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * kafkajs' retry for one operation: about 10 s of attempts (300 ms doubling, capped at 5 s)
 * before it gives up and the consumer crashes; the connector then restarts it with its backoff.
 */
const RETRY = { initialRetryTime: 300, maxRetryTime: 5_000, retries: 5 };
/**
 * An idle fetch returns after this long. kafkajs heartbeats between fetches, so this also bounds
 * how stale the group membership (and the `heartbeat` event health relies on) can get.
 */
const MAX_WAIT_MS = 1_000;

export function createKafkajsClient(options: KafkajsClientOptions): KafkaClient {
  return new KafkajsClient(options);
}

class KafkajsClient implements KafkaClient {
  private readonly kafka: Kafka;
  private readonly log: Logger;
  private readonly connectionListeners = new Set<(e: ConnectionErrorEvent) => void>();

  constructor(options: KafkajsClientOptions) {
    const log = (this.log = options.logger.child({ client: 'kafkajs' }));
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: [...options.brokers],
      ssl: options.ssl,
      sasl: options.sasl as SASLOptions | undefined,
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      retry: RETRY,
      logLevel: log.isLevelEnabled('debug') ? logLevel.INFO : logLevel.WARN,
      logCreator: () => (entry: LogEntry) => logEntry(log, entry),
      socketFactory: observedSocketFactory((e) => {
        for (const l of this.connectionListeners) l(e);
      }),
    });
  }

  consumer(options: ConsumerOptions): KafkaConsumer {
    return new KafkajsConsumer(
      this.kafka.consumer({
        groupId: options.groupId,
        sessionTimeout: options.sessionTimeoutMs,
        heartbeatInterval: Math.max(500, Math.floor(options.sessionTimeoutMs / 10)),
        maxWaitTimeInMs: MAX_WAIT_MS,
        allowAutoTopicCreation: false,
        retry: { ...RETRY, restartOnFailure: async () => false },
      }),
      this.log,
    );
  }

  producer(): KafkaProducer {
    return new KafkajsProducer(
      this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, retry: RETRY }),
    );
  }

  admin(): KafkaAdmin {
    // Few retries of admin requests: start() bounds its attempts with its own deadline (connectTimeoutMs).
    return new KafkajsAdmin(this.kafka.admin({ retry: { initialRetryTime: 300, maxRetryTime: 1_000, retries: 1 } }));
  }

  onConnectionError(listener: (event: ConnectionErrorEvent) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }
}

class KafkajsConsumer implements KafkaConsumer {
  private readonly listeners = new Set<(e: ConsumerEvent) => void>();

  constructor(
    private readonly consumer: Consumer,
    private readonly log: Logger,
  ) {
    const { events } = consumer;
    // kafkajs calls these synchronously where the event happens: GROUP_JOIN right after the
    // assignment is known and before the first fetch under it, which is what makes a seek made
    // in the `assigned` handler apply to that first fetch.
    consumer.on(events.GROUP_JOIN, (e) => {
      this.emit({ type: 'assigned', assignment: new Map(Object.entries(e.payload.memberAssignment)) });
    });
    consumer.on(events.HEARTBEAT, () => this.emit({ type: 'heartbeat' }));
    consumer.on(events.REBALANCING, () => this.emit({ type: 'rebalancing' }));
    consumer.on(events.END_BATCH_PROCESS, (e) => {
      // Batches with records reach the handler; a batch of only transaction markers or aborted
      // records does not, and kafkajs resolves it itself.
      if (e.payload.batchSize === 0) {
        const { topic, partition, firstOffset, lastOffset } = e.payload;
        this.emit({ type: 'skipped', topic, partition, firstOffset: String(firstOffset ?? lastOffset), lastOffset: String(lastOffset) });
      }
    });
    consumer.on(events.CRASH, (e) => {
      const error = toKafkaError(e.payload.error, 'consuming');
      this.emit({ type: 'crashed', error, retriable: error instanceof TidewireError ? error.retriable : false });
    });
  }

  private emit(event: ConsumerEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        // A listener's bug must not break kafkajs' join or fetch loop, which called us.
        this.log.error({ err, event: event.type }, 'a consumer event listener threw');
      }
    }
  }

  async connect(): Promise<void> {
    await wrap('connecting the consumer', () => this.consumer.connect());
  }

  async subscribe(topics: readonly string[]): Promise<void> {
    // fromBeginning only matters for a partition the connector does not seek (one created after start).
    await wrap('subscribing', () => this.consumer.subscribe({ topics: [...topics], fromBeginning: true }));
  }

  async run(handler: BatchHandler): Promise<void> {
    await wrap('starting the consumer', () =>
      this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          await handler(
            {
              topic: batch.topic,
              partition: batch.partition,
              highWatermark: batch.highWatermark,
              messages: batch.messages,
              lastOffset: batch.lastOffset(),
            },
            { isActive: () => isRunning() && !isStale(), resolveOffset, heartbeat },
          );
        },
      }),
    );
  }

  seek(topic: string, partition: number, offset: string): void {
    this.consumer.seek({ topic, partition, offset });
  }

  async commitOffsets(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    await wrap('committing offsets', () => this.consumer.commitOffsets(offsets.map((o) => ({ ...o }))));
  }

  on(listener: (event: ConsumerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async disconnect(): Promise<void> {
    await wrap('disconnecting the consumer', () => this.consumer.disconnect());
  }
}

class KafkajsProducer implements KafkaProducer {
  constructor(private readonly producer: Producer) {}

  async connect(): Promise<void> {
    await wrap('connecting the producer', () => this.producer.connect());
  }

  async send(topic: string, messages: readonly ProducedMessage[]): Promise<void> {
    await wrap(`producing to ${topic}`, () =>
      this.producer.send({
        topic,
        acks: -1,
        messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers as Record<string, Buffer | string | (Buffer | string)[] | undefined> })),
      }),
    );
  }

  async disconnect(): Promise<void> {
    await wrap('disconnecting the producer', () => this.producer.disconnect());
  }
}

/** ConfigResourceTypes.TOPIC: kafkajs defines the enum on its CommonJS exports, which ESM cannot name. */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

class KafkajsAdmin implements KafkaAdmin {
  constructor(private readonly admin: Admin) {}

  async connect(): Promise<void> {
    await wrap('connecting', () => this.admin.connect());
  }

  async clusterId(): Promise<string> {
    const { clusterId } = await wrap('reading the cluster id', () => this.admin.describeCluster());
    return clusterId;
  }

  async listTopics(): Promise<string[]> {
    return wrap('listing topics', () => this.admin.listTopics());
  }

  async fetchWatermarks(topic: string): Promise<PartitionWatermarks[]> {
    const offsets = await wrap(`reading the offsets of ${topic}`, () => this.admin.fetchTopicOffsets(topic));
    return offsets.map((o) => ({ partition: o.partition, low: o.low, high: o.high }));
  }

  async fetchCommittedOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
    const res = await wrap(`reading the committed offsets of group ${groupId}`, () => this.admin.fetchOffsets({ groupId, topics: [topic] }));
    const out = new Map<number, string>();
    for (const t of res) for (const p of t.partitions) if (Number(p.offset) >= 0) out.set(p.partition, p.offset);
    return out;
  }

  async describeTopicConfigs(topics: readonly string[], names: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    if (topics.length === 0) return out;
    const res = await wrap(`reading the configs of ${topics.length === 1 ? topics[0] : `${topics.length} topics`}`, () =>
      this.admin.describeConfigs({ includeSynonyms: false, resources: topics.map((name) => ({ type: TOPIC_RESOURCE, name, configNames: [...names] })) }),
    );
    for (const r of res.resources) out.set(r.resourceName, new Map(r.configEntries.map((e) => [e.configName, e.configValue])));
    return out;
  }

  async disconnect(): Promise<void> {
    await wrap('disconnecting', () => this.admin.disconnect());
  }
}

async function wrap<T>(doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKafkaError(err, doing);
  }
}

/** kafkajs error classes meaning "no usable connection to a broker". */
const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
]);
/** Protocol error codes (kafkajs `type`) meaning the ACLs refuse us. */
const NOT_AUTHORIZED = new Set(['TOPIC_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED']);

interface KafkajsErrorShape {
  name?: string;
  type?: string;
  retriable?: boolean;
  cause?: unknown;
}

/**
 * kafkajs wraps the error that ended its retries (KafkaJSNumberOfRetriesExceeded,
 * KafkaJSNonRetriableError) around the original one in `cause`: classify by the whole chain.
 * Errors of ours thrown from the batch handler come back through kafkajs the same way.
 */
export function toKafkaError(err: unknown, doing: string): Error {
  if (err instanceof TidewireError) return err;
  const chain: KafkajsErrorShape[] = [];
  for (let e: unknown = err; e && typeof e === 'object' && chain.length < 10; e = (e as KafkajsErrorShape).cause) {
    if (e instanceof TidewireError) return e;
    chain.push(e as KafkajsErrorShape);
  }
  const root = chain[chain.length - 1] ?? {};
  const why = errorMessage(err);
  if (chain.some((e) => e.name === 'KafkaJSSASLAuthenticationError')) {
    return new KafkaConnectorError('KAFKA_AUTH_FAILED', `Kafka rejected the SASL login while ${doing} (${why}): check kafka.sasl (mechanism, username) and TIDEWIRE_KAFKA_PASSWORD`, { cause: err });
  }
  const denied = chain.find((e) => e.type !== undefined && NOT_AUTHORIZED.has(e.type));
  if (denied) {
    return new KafkaConnectorError('KAFKA_NOT_AUTHORIZED', `Kafka refused access while ${doing} (${denied.type}): grant this principal Read on the topics, Read on group kafka.groupId and Write on kafka.deadLetterTopic`, { cause: err });
  }
  if (chain.some((e) => e.name !== undefined && CONNECTION_ERRORS.has(e.name))) {
    return new KafkaConnectorError('KAFKA_UNREACHABLE', `lost or could not open a connection to Kafka while ${doing} (${why})`, { retriable: true, cause: err });
  }
  // kafkajs' own rule for whether a crash is worth a restart.
  const retriable = chain[0]?.name === 'KafkaJSNumberOfRetriesExceeded' || root.retriable === true;
  return new KafkaConnectorError('KAFKA_ERROR', `Kafka error while ${doing}: ${why}`, { retriable, cause: err });
}

/** kafkajs' default socket factory, plus a report of every connection that fails or breaks. */
function observedSocketFactory(report: (e: ConnectionErrorEvent) => void): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    let connected = false;
    let failed = false;
    const connect = () => {
      connected = true;
      onConnect();
    };
    const socket = ssl
      ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...(typeof ssl === 'object' ? ssl : {}) }, connect)
      : net.connect({ host, port }, connect);
    socket.setKeepAlive(true, 60_000);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failed = true;
      report({ broker: `${host}:${port}`, code: err.code ?? err.name });
    });
    // kafkajs ends a socket that did not connect in time without an 'error' event.
    socket.on('close', () => {
      if (!connected && !failed) report({ broker: `${host}:${port}`, code: 'ETIMEDOUT' });
    });
    return socket;
  };
}

function logEntry(log: Logger, { namespace, level, log: entry }: LogEntry): void {
  const { message, timestamp: _t, logger: _l, ...fields } = entry as unknown as { message: string; timestamp?: string; logger?: string } & Record<string, unknown>;
  const obj = { namespace, ...fields };
  // kafkajs logs a retried connection failure as ERROR; the connector reports the state that matters.
  if (level === logLevel.ERROR || level === logLevel.WARN) log.warn(obj, message);
  else if (level === logLevel.INFO) log.debug(obj, message);
  else log.trace(obj, message);
}

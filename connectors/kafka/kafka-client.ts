/**
 * The few Kafka operations the connector needs, as an interface of ours. kafkajs has had no release
 * since 2023; this is the seam where it can be replaced (kafkajs-client.ts is the one
 * implementation) and where unit tests put a fake. Nothing in the connector imports kafkajs.
 *
 * Implementations throw KafkaConnectorError (errors.ts), with `retriable` set from the Kafka error
 * class or protocol code.
 */

export type KafkaHeaderValue = Buffer | string;
export type KafkaHeaders = Readonly<Record<string, KafkaHeaderValue | readonly KafkaHeaderValue[] | undefined>>;

/** One record as consumed. Offsets are int64 decimal strings, as Kafka clients give them. */
export interface KafkaMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  /** `null` is a tombstone. */
  readonly value: Buffer | null;
  readonly headers?: KafkaHeaders;
}

/** Records of one partition from one fetch, in offset order. */
export interface KafkaBatch {
  readonly topic: string;
  readonly partition: number;
  /** The partition's high watermark (offset of the next record to be written) when fetched. */
  readonly highWatermark: string;
  readonly messages: readonly KafkaMessage[];
  /**
   * Offset of the last record fetched, including records the client filtered out (transaction
   * markers, aborted records): resolving it moves the position past them.
   */
  readonly lastOffset: string;
}

export interface BatchControl {
  /**
   * False once the consumer is stopping, or the partition was sought or revoked since the batch
   * was fetched: the rest of the batch must not be processed.
   */
  isActive(): boolean;
  /** Marks every offset up to and including `offset` as processed: the next fetch starts after it. */
  resolveOffset(offset: string): void;
  /** Keeps the group membership alive during a long batch; throws when the group is rebalancing. */
  heartbeat(): Promise<void>;
}

export type BatchHandler = (batch: KafkaBatch, control: BatchControl) => Promise<void>;

export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export type ConsumerEvent =
  /**
   * The group was joined and these partitions assigned (topic → partitions). Delivered
   * synchronously, before any fetch under the new assignment: a seek() made while handling it
   * applies to the very first fetch.
   */
  | { readonly type: 'assigned'; readonly assignment: ReadonlyMap<string, readonly number[]> }
  /** A heartbeat reached the group coordinator: the consumer is a live member of its group. */
  | { readonly type: 'heartbeat' }
  /** The group is rebalancing; an `assigned` follows. */
  | { readonly type: 'rebalancing' }
  /**
   * A fetched batch held only records the client filters out (transaction markers, aborted
   * records) from `firstOffset` to `lastOffset`; the client moved past them without calling the
   * handler.
   */
  | { readonly type: 'skipped'; readonly topic: string; readonly partition: number; readonly firstOffset: string; readonly lastOffset: string }
  /** The consumer stopped on an error and will not restart by itself. */
  | { readonly type: 'crashed'; readonly error: Error; readonly retriable: boolean };

export interface KafkaConsumer {
  connect(): Promise<void>;
  /** Subscribes to exact topic names (patterns are resolved by the caller, see KafkaAdmin.listTopics). */
  subscribe(topics: readonly string[]): Promise<void>;
  /**
   * Joins the group and starts fetching; resolves once running. Batches of one partition are
   * handed over one at a time, in order. Offsets are committed only by commitOffsets().
   */
  run(handler: BatchHandler): Promise<void>;
  /** The next fetch of this partition starts at `offset`. Only after run(). */
  seek(topic: string, partition: number, offset: string): void;
  /** Commits group offsets: each `offset` is the next record to consume, i.e. last processed + 1. */
  commitOffsets(offsets: readonly TopicPartitionOffset[]): Promise<void>;
  on(listener: (event: ConsumerEvent) => void): () => void;
  /** Leaves the group, after the batch being handled (if any) returns. */
  disconnect(): Promise<void>;
}

export interface ProducedMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: KafkaHeaders;
}

export interface KafkaProducer {
  connect(): Promise<void>;
  /** Resolves once every message is acknowledged by all in-sync replicas. */
  send(topic: string, messages: readonly ProducedMessage[]): Promise<void>;
  disconnect(): Promise<void>;
}

export interface PartitionWatermarks {
  readonly partition: number;
  /** First offset still in the log. */
  readonly low: string;
  /** Offset the next record written will get. */
  readonly high: string;
}

export interface KafkaAdmin {
  connect(): Promise<void>;
  /**
   * The cluster's id (KRaft or ZooKeeper cluster id, as DescribeCluster reports it): which Kafka a
   * stored state's offsets belong to. Needed with durable state only; a client without it cannot
   * be used with durable state (the connector refuses to start rather than resume unchecked).
   */
  clusterId?(): Promise<string>;
  listTopics(): Promise<string[]>;
  fetchWatermarks(topic: string): Promise<PartitionWatermarks[]>;
  /** The group's committed offsets (partition → next offset); partitions without one are absent. */
  fetchCommittedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /**
   * Topic settings in force (the broker's defaults included), for the names asked: topic →
   * setting → value. Needs DescribeConfigs on the topics.
   * @example await admin.describeTopicConfigs(['shop.public.orders'], ['cleanup.policy']) // Map { 'shop.public.orders' => Map { 'cleanup.policy' => 'compact' } }
   */
  describeTopicConfigs(topics: readonly string[], names: readonly string[]): Promise<Map<string, Map<string, string>>>;
  disconnect(): Promise<void>;
}

export interface ConsumerOptions {
  readonly groupId: string;
  readonly sessionTimeoutMs: number;
}

/** A connection to a broker failed or broke: refused, reset, TLS failure. */
export interface ConnectionErrorEvent {
  /** `host:port` */
  readonly broker: string;
  /** The socket error code (ECONNREFUSED, ECONNRESET, ...), or the error name when there is none. */
  readonly code: string;
}

export interface KafkaClient {
  consumer(options: ConsumerOptions): KafkaConsumer;
  producer(): KafkaProducer;
  admin(): KafkaAdmin;
  /**
   * Transport trouble on any connection of this client, as it happens: the client's own retries
   * can take many seconds to give up, and health should say "degraded" before that.
   */
  onConnectionError(listener: (event: ConnectionErrorEvent) => void): () => void;
}

// A scripted KafkaClient (our own port, kafka-client.ts) for the connector's unit tests: the test
// decides what the "broker" holds, assigns and delivers, and when. Real Kafka is in the
// integration tests.
import { KafkaConnectorError } from '../../../connectors/kafka/errors.ts';
import type {
  BatchHandler,
  ConnectionErrorEvent,
  ConsumerEvent,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaMessage,
  KafkaProducer,
  TopicPartitionOffset,
} from '../../../connectors/kafka/kafka-client.ts';

export interface FakePartition {
  low: number;
  records: Map<number, KafkaMessage>;
  high: number;
}

export class FakeConsumer implements KafkaConsumer {
  handler: BatchHandler | null = null;
  readonly listeners = new Set<(e: ConsumerEvent) => void>();
  readonly seeks: string[] = [];
  readonly positions = new Map<string, number>();
  running = false;

  constructor(private readonly kafka: FakeKafka) {}

  async connect() {}
  async subscribe() {}
  async run(handler: BatchHandler) {
    this.handler = handler;
    this.running = true;
  }
  seek(topic: string, partition: number, offset: string) {
    this.seeks.push(`${topic}:${partition}@${offset}`);
    this.positions.set(`${topic}:${partition}`, Number(offset));
  }
  async commitOffsets(offsets: readonly TopicPartitionOffset[]) {
    for (const o of offsets) this.kafka.committed.set(`${o.topic}:${o.partition}`, o.offset);
  }
  on(l: (e: ConsumerEvent) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  async disconnect() {
    this.running = false;
  }
  assign(assignment: Record<string, number[]>) {
    for (const l of this.listeners) l({ type: 'assigned', assignment: new Map(Object.entries(assignment)) });
  }
  /** Delivers a partition's records from the consumer's position (or `from`) to the end, as one batch. */
  async deliver(topic: string, partition: number, from?: number) {
    const p = this.kafka.partition(topic, partition);
    const start = from ?? this.positions.get(`${topic}:${partition}`) ?? p.low;
    const messages = [...p.records.entries()].filter(([o]) => o >= start).map(([, m]) => m);
    let resolved = start - 1;
    await this.handler!(
      { topic, partition, highWatermark: String(p.high), messages, lastOffset: String(p.high - 1) },
      { isActive: () => this.running, resolveOffset: (o) => void (resolved = Number(o)), heartbeat: async () => {} },
    );
    this.positions.set(`${topic}:${partition}`, resolved + 1);
  }
}

export class FakeKafka implements KafkaClient {
  readonly topics = new Map<string, FakePartition[]>();
  readonly committed = new Map<string, string>();
  readonly consumers: FakeConsumer[] = [];
  clusterId = 'cluster-a';

  /** A topic whose partitions each hold `values` from offset `low` (keys k<offset> unless given). */
  addTopic(name: string, partitions: { low?: number; values: (object | null)[]; keys?: string[] }[]) {
    this.topics.set(
      name,
      partitions.map(({ low = 0, values, keys }) => {
        const records = new Map<number, KafkaMessage>();
        values.forEach((v, i) => {
          const offset = low + i;
          records.set(offset, { offset: String(offset), key: Buffer.from(keys?.[i] ?? `k${offset}`), value: v === null ? null : Buffer.from(JSON.stringify(v)), headers: {} });
        });
        return { low, records, high: low + values.length };
      }),
    );
  }
  append(topic: string, partition: number, key: string, value: object | null) {
    const p = this.partition(topic, partition);
    p.records.set(p.high, { offset: String(p.high), key: Buffer.from(key), value: value === null ? null : Buffer.from(JSON.stringify(value)), headers: {} });
    p.high++;
  }
  /** Retention: records below `low` are gone. */
  deleteBelow(topic: string, partition: number, low: number) {
    const p = this.partition(topic, partition);
    for (const o of p.records.keys()) if (o < low) p.records.delete(o);
    p.low = low;
  }
  partition(topic: string, partition: number) {
    return this.topics.get(topic)![partition];
  }
  get lastConsumer() {
    return this.consumers[this.consumers.length - 1];
  }

  consumer(): KafkaConsumer {
    const c = new FakeConsumer(this);
    this.consumers.push(c);
    return c;
  }
  producer(): KafkaProducer {
    return { connect: async () => {}, send: async () => {}, disconnect: async () => {} };
  }
  admin(): KafkaAdmin {
    return {
      connect: async () => {},
      clusterId: async () => this.clusterId,
      listTopics: async () => [...this.topics.keys(), '__consumer_offsets'],
      fetchWatermarks: async (topic) => {
        const t = this.topics.get(topic);
        if (!t) throw new KafkaConnectorError('KAFKA_TOPIC_MISSING', `no topic ${topic}`);
        return t.map((p, partition) => ({ partition, low: String(p.low), high: String(p.high) }));
      },
      fetchCommittedOffsets: async (_g, topic) => {
        const out = new Map<number, string>();
        for (const [k, v] of this.committed) if (k.startsWith(`${topic}:`)) out.set(Number(k.slice(topic.length + 1)), v);
        return out;
      },
      describeTopicConfigs: async () => new Map(),
      disconnect: async () => {},
    };
  }
  onConnectionError(_l: (e: ConnectionErrorEvent) => void) {
    return () => {};
  }
}

// The connector's offset handling, catch-up, dead-lettering, restarts and health, driven through
// a scripted KafkaClient: the test decides what the "broker" assigns and delivers, and when.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { KafkaConnector, KafkaConnectorError } from '../../connectors/kafka/index.ts';
import type {
  BatchHandler,
  ConnectionErrorEvent,
  ConsumerEvent,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaMessage,
  KafkaProducer,
  ProducedMessage,
  TopicPartitionOffset,
} from '../../connectors/kafka/kafka-client.ts';
import type { KafkaConfig } from '../../services/config/config.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';

const logger = pino({ level: 'silent' });

interface FakePartition {
  low: number;
  records: Map<number, KafkaMessage>;
  high: number;
}

class FakeConsumer implements KafkaConsumer {
  handler: BatchHandler | null = null;
  readonly listeners = new Set<(e: ConsumerEvent) => void>();
  readonly seeks: string[] = [];
  readonly positions = new Map<string, number>();
  running = false;
  disconnected = false;
  constructor(private readonly kafka: FakeKafka) {}
  async connect() {
    if (this.kafka.unreachable) throw new KafkaConnectorError('KAFKA_UNREACHABLE', 'down', { retriable: true });
  }
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
    this.disconnected = true;
  }
  emit(e: ConsumerEvent) {
    for (const l of this.listeners) l(e);
  }
  assign(assignment: Record<string, number[]>) {
    this.emit({ type: 'assigned', assignment: new Map(Object.entries(assignment)) });
  }
  /** Delivers the records of a partition from `from` (default: the consumer's position) up to the end. */
  async deliver(topic: string, partition: number, from?: number, opts: { stale?: boolean } = {}) {
    const p = this.kafka.partition(topic, partition);
    const start = from ?? this.positions.get(`${topic}:${partition}`) ?? p.low;
    const messages = [...p.records.entries()].filter(([o]) => o >= start).map(([, m]) => m);
    let resolved = start - 1;
    await this.handler!(
      { topic, partition, highWatermark: String(p.high), messages, lastOffset: String(p.high - 1) },
      { isActive: () => this.running && !opts.stale, resolveOffset: (o) => void (resolved = Number(o)), heartbeat: async () => {} },
    );
    this.positions.set(`${topic}:${partition}`, resolved + 1);
  }
}

class FakeKafka implements KafkaClient {
  readonly topics = new Map<string, FakePartition[]>();
  readonly committed = new Map<string, string>();
  readonly produced: { topic: string; messages: readonly ProducedMessage[] }[] = [];
  readonly consumers: FakeConsumer[] = [];
  readonly connectionListeners = new Set<(e: ConnectionErrorEvent) => void>();
  unreachable = false;
  failProduce: Error | null = null;

  addTopic(name: string, partitions: { low?: number; values: (unknown | null)[]; keys?: string[] }[]) {
    this.topics.set(
      name,
      partitions.map(({ low = 0, values, keys }) => {
        const records = new Map<number, KafkaMessage>();
        values.forEach((v, i) => {
          const offset = low + i;
          const value = v === null ? null : typeof v === 'string' ? Buffer.from(v) : Buffer.from(JSON.stringify(v));
          records.set(offset, { offset: String(offset), key: Buffer.from(keys?.[i] ?? `k${offset}`), value, headers: {} });
        });
        return { low, records, high: low + values.length };
      }),
    );
  }
  append(topic: string, partition: number, value: unknown, key: string) {
    const p = this.partition(topic, partition);
    p.records.set(p.high, { offset: String(p.high), key: Buffer.from(key), value: Buffer.from(JSON.stringify(value)), headers: {} });
    p.high++;
  }
  partition(topic: string, partition: number) {
    return this.topics.get(topic)![partition];
  }
  get consumer0() {
    return this.consumers[0];
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
    return {
      connect: async () => {},
      send: async (topic, messages) => {
        if (this.failProduce) throw this.failProduce;
        this.produced.push({ topic, messages });
      },
      disconnect: async () => {},
    };
  }
  admin(): KafkaAdmin {
    const unreachable = () => new KafkaConnectorError('KAFKA_UNREACHABLE', 'connect ECONNREFUSED', { retriable: true });
    return {
      connect: async () => {
        if (this.unreachable) throw unreachable();
      },
      listTopics: async () => [...this.topics.keys(), '__consumer_offsets'],
      fetchWatermarks: async (topic) => this.topics.get(topic)!.map((p, partition) => ({ partition, low: String(p.low), high: String(p.high) })),
      fetchCommittedOffsets: async (_g, topic) => {
        const out = new Map<number, string>();
        for (const [k, v] of this.committed) if (k.startsWith(`${topic}:`)) out.set(Number(k.slice(topic.length + 1)), v);
        return out;
      },
      describeTopicConfigs: async () => new Map(), // only `tidewire check` reads topic configs
      disconnect: async () => {},
    };
  }
  onConnectionError(l: (e: ConnectionErrorEvent) => void) {
    this.connectionListeners.add(l);
    return () => this.connectionListeners.delete(l);
  }
}

function setup(config: Partial<KafkaConfig> = {}) {
  const kafka = new FakeKafka();
  const store = new TopicStore();
  const pipeline = new Pipeline(store, new InProcessHandoff(store));
  const make = () =>
    new KafkaConnector(
      { brokers: ['fake:9092'], topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}' }], connectTimeoutMs: 300, ...config },
      pipeline,
      { logger, client: kafka, restart: { initialMs: 5, maxMs: 20 } },
    );
  return { kafka, store, pipeline, make };
}

/** Lets the connector's pending promise callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

async function until(what: string, check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('first assignment seeks every partition to its earliest offset, whatever the group committed; start() waits for the catch-up', async () => {
  const { kafka, store, make } = setup();
  kafka.addTopic('prices', [{ values: [{ v: 0 }, { v: 1 }, { v: 2 }] }, { low: 5, values: [{ v: 5 }, { v: 6 }] }]);
  kafka.committed.set('prices:0', '3'); // a previous process got to the end
  const connector = make();
  let started = false;
  const starting = connector.start().then(() => (started = true));
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0, 1] });
  assert.deepEqual(kafka.consumer0.seeks, ['prices:0@0', 'prices:1@5']);
  assert.equal(connector.health().state, 'snapshotting');
  assert.match(connector.health().detail!, /2 partition\(s\), 5 record\(s\) behind/);

  await kafka.consumer0.deliver('prices', 0);
  await tick();
  assert.equal(started, false, 'one partition is still behind');
  assert.equal(kafka.committed.get('prices:0'), '3', 'offset + 1 committed after the batch was applied');
  await kafka.consumer0.deliver('prices', 1);
  await starting;
  assert.equal(connector.health().state, 'streaming');
  assert.equal(kafka.committed.get('prices:1'), '7');
  assert.deepEqual(store.get('prices/k6')!.value, { v: 6 });
  assert.equal(store.size, 5);
  const stats = connector.stats();
  assert.equal(stats.records, 5);
  assert.equal(stats.applied, 5);
  assert.deepEqual(
    stats.partitions.map((p) => [p.partition, p.position, p.committed, p.lag]),
    [
      [0, 3, 3, 0],
      [1, 7, 7, 0],
    ],
  );
  await connector.stop();
  assert.equal(connector.health().state, 'stopped');
});

test('a reassigned partition resumes at this process position; records it already applied are never applied again', async () => {
  const { kafka, store, make } = setup();
  kafka.addTopic('prices', [{ values: [{ v: 'a' }, { v: 'b' }], keys: ['x', 'x'] }]);
  const connector = make();
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  await kafka.consumer0.deliver('prices', 0);
  await starting;
  assert.equal(store.get('prices/x')!.version, 2);

  kafka.append('prices', 0, { v: 'c' }, 'x');
  kafka.consumer0.assign({ prices: [0] }); // a rebalance
  assert.deepEqual(kafka.consumer0.seeks, ['prices:0@0', 'prices:0@2'], 'resume at the first offset not applied, not at 0');
  // The client redelivers from an older offset anyway (e.g. a fetch from the committed offset before the seek landed):
  await kafka.consumer0.deliver('prices', 0, 0);
  assert.deepEqual(store.get('prices/x')!.value, { v: 'c' });
  assert.equal(store.get('prices/x')!.version, 3, 'a, b were not re-applied: no value went back in time');
  assert.equal(connector.stats().redelivered, 2);
  await connector.stop();
});

test('a batch from before a seek (stale) is not applied', async () => {
  const { kafka, store, make } = setup();
  kafka.addTopic('prices', [{ values: [{ v: 1 }] }]);
  const connector = make();
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  await kafka.consumer0.deliver('prices', 0, 0, { stale: true });
  assert.equal(store.size, 0);
  await kafka.consumer0.deliver('prices', 0);
  await starting;
  assert.equal(store.size, 1);
  await connector.stop();
});

test('bad records are dead-lettered before the offset moves past them; a failed dead-letter send holds the offset', async () => {
  const { kafka, store, make } = setup({ deadLetterTopic: 'dlq' });
  kafka.addTopic('dlq', [{ values: [] }]);
  kafka.addTopic('prices', [{ values: [{ v: 1 }, '{not json', { v: 3 }] }]);
  kafka.failProduce = new KafkaConnectorError('KAFKA_UNREACHABLE', 'down', { retriable: true });
  const connector = make();
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  await assert.rejects(kafka.consumer0.deliver('prices', 0), /down/);
  assert.equal(kafka.committed.get('prices:0'), undefined, 'nothing committed');
  assert.equal(store.size, 0, 'nothing of the chunk applied either: it is retried whole');
  assert.equal(connector.stats().deadLettered, 0);

  kafka.failProduce = null;
  await kafka.consumer0.deliver('prices', 0);
  await starting;
  assert.equal(kafka.committed.get('prices:0'), '3');
  assert.deepEqual([...store.all()].map((t) => t.path).sort(), ['prices/k0', 'prices/k2']);
  assert.equal(kafka.produced.length, 1);
  assert.equal(kafka.produced[0].topic, 'dlq');
  assert.equal(String(kafka.produced[0].messages[0].headers['tidewire-source-offset']), '1');
  const stats = connector.stats();
  assert.equal(stats.bad['invalid-json'], 1);
  assert.equal(stats.deadLettered, 1);
  await connector.stop();
});

test('a retriable crash restarts the consumer with backoff: degraded meanwhile, streaming once it rejoined, resuming where it was', async () => {
  const { kafka, store, make } = setup();
  kafka.addTopic('prices', [{ values: [{ v: 1 }] }]);
  const connector = make();
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  await kafka.consumer0.deliver('prices', 0);
  await starting;

  kafka.unreachable = true;
  kafka.consumer0.emit({ type: 'crashed', error: new KafkaConnectorError('KAFKA_UNREACHABLE', 'connect ECONNREFUSED', { retriable: true }), retriable: true });
  assert.equal(connector.health().state, 'degraded');
  assert.match(connector.health().detail!, /restarting \(attempt 1\)/);
  await until('a second restart attempt', () => connector.stats().restarts >= 2);
  kafka.unreachable = false;
  await until('a running replacement consumer', () => kafka.lastConsumer.running);
  assert.equal(connector.health().state, 'degraded', 'not healthy before it is a group member again');
  kafka.append('prices', 0, { v: 2 }, 'k0');
  kafka.lastConsumer.assign({ prices: [0] });
  assert.deepEqual(kafka.lastConsumer.seeks, ['prices:0@1']);
  assert.equal(connector.health().state, 'streaming');
  await kafka.lastConsumer.deliver('prices', 0);
  assert.deepEqual(store.get('prices/k0')!.value, { v: 2 });
  // Events of the consumer that crashed are ignored from now on.
  kafka.consumer0.emit({ type: 'crashed', error: new Error('late'), retriable: false });
  assert.equal(connector.health().state, 'streaming');
  await connector.stop();
});

test('connection errors make health degraded at once; a heartbeat makes it streaming again', async () => {
  const { kafka, make } = setup();
  kafka.addTopic('prices', [{ values: [] }]);
  const connector = make();
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  await starting;
  assert.equal(connector.health().state, 'streaming', 'an empty partition is caught up at once');
  for (const l of kafka.connectionListeners) l({ broker: 'fake:9092', code: 'ECONNREFUSED' });
  assert.equal(connector.health().state, 'degraded');
  assert.match(connector.health().detail!, /cannot reach Kafka broker fake:9092 \(ECONNREFUSED\)/);
  kafka.consumer0.emit({ type: 'heartbeat' });
  assert.equal(connector.health().state, 'streaming');
  await connector.stop();
});

test('a crash retrying cannot fix fails the connector, and a sink failure is such a crash', async () => {
  const { kafka, make, pipeline } = setup();
  kafka.addTopic('prices', [{ values: [{ v: 1 }] }]);
  const connector = make();
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  pipeline.apply = async () => {
    throw new Error('disk on fire');
  };
  await assert.rejects(kafka.consumer0.deliver('prices', 0), (e: unknown) => e instanceof KafkaConnectorError && e.code === 'KAFKA_SINK_FAILED' && !e.retriable);
  assert.equal(kafka.committed.get('prices:0'), undefined);
  // kafkajs reports the handler's error as a crash:
  kafka.consumer0.emit({ type: 'crashed', error: new KafkaConnectorError('KAFKA_SINK_FAILED', 'x'), retriable: false });
  await assert.rejects(starting, /KAFKA_SINK_FAILED|x/);
  assert.equal(connector.health().state, 'failed');
  assert.ok(kafka.consumer0.disconnected);
});

test('start() gives up with KAFKA_UNREACHABLE after connectTimeoutMs, naming the setting to check', async () => {
  const { kafka, make } = setup({ connectTimeoutMs: 200 });
  kafka.unreachable = true;
  const connector = make();
  const t0 = Date.now();
  await assert.rejects(connector.start(), (e: unknown) => {
    assert.ok(e instanceof KafkaConnectorError);
    assert.equal(e.code, 'KAFKA_UNREACHABLE');
    assert.match(e.message, /within 200 ms .*check kafka\.brokers/);
    return true;
  });
  assert.ok(Date.now() - t0 >= 150, 'it kept trying until the deadline');
  assert.equal(connector.health().state, 'failed');
});

test('missing topics fail start(); patterns skip internal topics and the dead-letter topic', async () => {
  const a = setup();
  await assert.rejects(a.make().start(), (e: unknown) => e instanceof KafkaConnectorError && e.code === 'KAFKA_TOPIC_MISSING' && /kafka\.topics\.0\.topic: Kafka has no topic "prices"/.test(e.message));

  const b = setup({ deadLetterTopic: 'dlq' });
  b.kafka.addTopic('prices', [{ values: [] }]);
  await assert.rejects(b.make().start(), /kafka\.deadLetterTopic: Kafka has no topic "dlq"/);

  const c = setup({ deadLetterTopic: 'prices.dlq', topics: [{ pattern: '.*', format: 'json', path: 'p/{topic}/{key}' }] });
  c.kafka.addTopic('prices.dlq', [{ values: [] }]);
  c.kafka.addTopic('prices.eu', [{ values: [{ v: 1 }] }]);
  const connector = c.make();
  const starting = connector.start();
  await until('the consumer runs', () => c.kafka.consumer0?.running === true);
  c.kafka.consumer0.assign({ 'prices.eu': [0] });
  await c.kafka.consumer0.deliver('prices.eu', 0);
  await starting;
  assert.equal(c.store.get('p/prices.eu/k0')!.source, 'kafka:prices.eu');
  await connector.stop();
});

test('startFrom committed reads from the committed offset; stop() during start() rejects with KAFKA_STOPPED', async () => {
  const { kafka, store, make } = setup({ startFrom: 'committed' });
  kafka.addTopic('prices', [{ values: [{ v: 0 }, { v: 1 }, { v: 2 }] }]);
  kafka.committed.set('prices:0', '2');
  const connector = make();
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  assert.deepEqual(kafka.consumer0.seeks, ['prices:0@2']);
  await connector.stop();
  await assert.rejects(starting, (e: unknown) => e instanceof KafkaConnectorError && e.code === 'KAFKA_STOPPED');
  assert.equal(store.size, 0);
});

test('a partition whose tail is only transaction markers still completes the catch-up', async () => {
  const { kafka, make } = setup();
  kafka.addTopic('prices', [{ values: [{ v: 0 }] }]);
  kafka.partition('prices', 0).high = 3; // offsets 1 and 2: a commit marker, etc.
  const connector = make();
  let started = false;
  const starting = connector.start().then(() => (started = true));
  await until('the consumer runs', () => kafka.consumer0?.running === true);
  kafka.consumer0.assign({ prices: [0] });
  // The client hands over record 0 with lastOffset 2 (it filtered the markers behind it).
  await kafka.consumer0.deliver('prices', 0);
  await starting;
  assert.ok(started);
  assert.equal(kafka.committed.get('prices:0'), '3');

  // And a fetch made only of markers arrives as a `skipped` event.
  kafka.partition('prices', 0).high = 5;
  kafka.consumer0.emit({ type: 'skipped', topic: 'prices', partition: 0, firstOffset: '3', lastOffset: '4' });
  assert.equal(connector.stats().partitions[0].position, 5);
  // ... but not one from a stale position ahead of this process (it would jump over records).
  kafka.consumer0.emit({ type: 'skipped', topic: 'prices', partition: 0, firstOffset: '9', lastOffset: '12' });
  assert.equal(connector.stats().partitions[0].position, 5);
  await connector.stop();
});

test('the mapping and settings are validated at construction', () => {
  const { pipeline } = setup();
  assert.throws(() => new KafkaConnector({ brokers: [], topics: [] } as unknown as KafkaConfig, pipeline, { logger }), /kafka\.brokers/);
  assert.throws(
    () => new KafkaConnector({ brokers: ['k:1'], topics: [{ topic: 't', format: 'json', path: 'a/{nope}' }] }, pipeline, { logger, client: new FakeKafka() }),
    /kafka\.topics\.0\.path/,
  );
  assert.throws(
    () => new KafkaConnector({ brokers: ['k:1'], sessionTimeoutMs: 10, topics: [{ topic: 't', format: 'json', path: 'a/{key}' }] }, pipeline, { logger, client: new FakeKafka() }),
    /kafka\.sessionTimeoutMs/,
  );
});

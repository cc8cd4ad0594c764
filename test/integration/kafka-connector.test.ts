// The Kafka connector against a real broker (Apache Kafka 4.1, KRaft): records become topic state
// through a real Pipeline, TopicStore and InProcessHandoff, and what a client would see (values,
// deltas, removals with versions) is checked from the emitted ChangeBatches. Covers JSON and
// Debezium formats, tombstones, a connector restart and a broker SIGKILL while a producer writes,
// a group rebalance, bad records and the dead-letter topic, per-partition order across several
// partitions, transactions, and an unreachable cluster at start.
//
// One broker for the whole file (it takes 5-15 s to start). TIDEWIRE_TEST_LOG=debug shows the
// connector's logs.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { Kafka, type Admin, type Producer, Partitioners, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { applyPatch } from '../../client/json-patch.ts';
import { KafkaConnector, KafkaConnectorError, type KafkaConnectorStats } from '../../connectors/kafka/index.ts';
import type { KafkaConfig, KafkaTopicMapping } from '../../services/config/config.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import type { JsonObject, JsonValue } from '../../core/json.ts';
import { Pipeline } from '../../services/pipeline.ts';
import type { ChangeBatch } from '../../core/topic.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';

const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });
let broker: KafkaBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const connectors: KafkaConnector[] = [];
let unique = 0;
const name = (what: string) => `${what}-${process.pid}-${++unique}`;

before(async () => {
  const t0 = Date.now();
  broker = await startKafka();
  console.log(`[kafka] broker ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  kafka = new Kafka({ clientId: 'kafka-connector-test', brokers: broker.brokers, logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 } });
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
});

after(async () => {
  await Promise.allSettled(connectors.map((c) => c.stop()));
  await producer?.disconnect().catch(() => {});
  await admin?.disconnect().catch(() => {});
  await broker?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** Creates a topic and waits until every partition has a leader (kafkajs' own wait can fail on a busy broker). */
async function createTopic(topic: string, numPartitions = 1): Promise<string> {
  await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: false });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => null);
    const partitions = meta?.topics[0]?.partitions ?? [];
    if (partitions.length === numPartitions && partitions.every((p) => p.leader >= 0)) return topic;
    if (Date.now() > deadline) throw new Error(`topic ${topic} has no leader for every partition after 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Rec {
  key: string | null;
  value: unknown;
  partition?: number;
  headers?: Record<string, string>;
}

/** `value`: an object is sent as JSON, a string as is (for invalid JSON), null as a tombstone. */
async function produce(topic: string, records: Rec[]): Promise<void> {
  await producer.send({
    topic,
    acks: -1,
    messages: records.map((r) => ({
      key: r.key,
      value: r.value === null ? null : typeof r.value === 'string' ? r.value : JSON.stringify(r.value),
      partition: r.partition,
      headers: r.headers,
    })),
  });
}

/** A TopicStore fed through Pipeline + InProcessHandoff, a connector, and a client-side model rebuilt from the emitted batches. */
function harness(config: Partial<KafkaConfig> & { topics: KafkaTopicMapping[] }) {
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  const batches: ChangeBatch[] = [];
  /** What a client subscribed to everything holds: values rebuilt from values, deltas and removals. */
  const seen = new Map<string, { version: number; value: JsonValue }>();
  /** Every version a path went through, in order. */
  const versions = new Map<string, number[]>();
  const violations: string[] = [];
  handoff.subscribe((b) => {
    batches.push(b);
    for (const c of b.changes) {
      const msg = JSON.parse(c.wire) as { type: string; path: string; version: number; value?: JsonValue; patch?: never[] };
      const prev = seen.get(msg.path);
      if (prev && msg.version !== prev.version + 1) violations.push(`${msg.path}: version ${msg.version} after ${prev.version}`);
      if (msg.type === 'value') seen.set(msg.path, { version: msg.version, value: msg.value! });
      else if (msg.type === 'delta') {
        if (!prev) violations.push(`${msg.path}: delta without a value`);
        else seen.set(msg.path, { version: msg.version, value: applyPatch(prev.value, msg.patch!) });
      } else seen.set(msg.path, { version: msg.version, value: null }); // a removal: version kept for the order check
      // Values carrying a producer sequence number must never go back in time.
      const seq = (v: JsonValue | undefined) => (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v.seq === 'number' ? v.seq : undefined);
      const before = seq(prev?.value);
      const now = seq(seen.get(msg.path)!.value);
      if (before !== undefined && now !== undefined && now < before) violations.push(`${msg.path}: seq ${now} after ${before}`);
      let v = versions.get(msg.path);
      if (!v) versions.set(msg.path, (v = []));
      v.push(msg.version);
    }
  });
  const groupId = config.groupId ?? name('group');
  const connector = new KafkaConnector(
    { brokers: broker.brokers, sessionTimeoutMs: 6_000, connectTimeoutMs: 20_000, ...config, groupId },
    new Pipeline(store, handoff),
    { logger, restart: { initialMs: 200, maxMs: 2_000 } },
  );
  connectors.push(connector);
  const live = () => new Map([...seen].filter(([, s]) => s.value !== null).map(([p, s]) => [p, s.value]));
  return { store, batches, connector, seen, versions, violations, live, groupId };
}

async function until<T>(what: string, ms: number, check: () => T | undefined | false, detail?: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function storeState(store: TopicStore): Map<string, JsonValue> {
  return new Map([...store.all()].map((t) => [t.path, t.value]));
}

function sameState(actual: Map<string, JsonValue>, expected: Map<string, JsonValue>): boolean {
  if (actual.size !== expected.size) return false;
  for (const [p, v] of expected) if (JSON.stringify(actual.get(p)) !== JSON.stringify(v)) return false;
  return true;
}

function diffState(actual: Map<string, JsonValue>, expected: Map<string, JsonValue>): string {
  const wrong = [...expected].filter(([p, v]) => JSON.stringify(actual.get(p)) !== JSON.stringify(v)).slice(0, 5);
  const extra = [...actual.keys()].filter((p) => !expected.has(p)).slice(0, 5);
  return `size ${actual.size}/${expected.size}; wrong ${JSON.stringify(wrong.map(([p, v]) => [p, v, actual.get(p)]))}; extra ${JSON.stringify(extra)}`;
}

async function groupLag(groupId: string, topic: string): Promise<number> {
  const [high, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const c = new Map(committed[0].partitions.map((p) => [p.partition, Number(p.offset)]));
  return high.reduce((n, p) => n + Number(p.high) - Math.max(0, c.get(p.partition) ?? 0), 0);
}

/** The group's lag once commits settle (they follow each applied batch), or what it is after 10 s. */
async function settledLag(groupId: string, topic: string): Promise<number> {
  for (const deadline = Date.now() + 10_000; ; ) {
    const lag = await groupLag(groupId, topic);
    if (lag === 0 || Date.now() > deadline) return lag;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A Debezium change event as the Postgres connector writes it with the JsonConverter
// (decimal.handling.mode=string, time.precision.mode=connect), row values chosen as tidewire's
// Postgres connector renders them: numeric as text, int8 as a number, timestamptz as ISO text.
const ROW_FIELDS: JsonObject[] = [
  { type: 'int64', optional: false, field: 'id' },
  { type: 'string', optional: false, field: 'venue' },
  { type: 'string', optional: true, field: 'price' },
  { type: 'int64', optional: true, field: 'qty' },
  { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1, field: 'updated_at' },
];
let lsn = 24_023_128;
function debeziumValue(op: 'c' | 'r' | 'u' | 'd', before: JsonObject | null, after: JsonObject | null, withSchema: boolean): JsonObject {
  const ts = Date.UTC(2026, 0, 1, 9, 30);
  lsn += 96;
  const payload: JsonObject = {
    before,
    after,
    source: {
      version: '3.1.2.Final', connector: 'postgresql', name: 'shop', ts_ms: ts, snapshot: op === 'r' ? 'true' : 'false', db: 'shop',
      sequence: `["${lsn - 96}","${lsn}"]`, ts_us: ts * 1000, ts_ns: ts * 1_000_000, schema: 'public', table: 'prices', txId: 771, lsn, xmin: null,
    },
    transaction: null,
    op,
    ts_ms: ts + 3,
    ts_us: (ts + 3) * 1000,
    ts_ns: (ts + 3) * 1_000_000,
  };
  if (!withSchema) return payload;
  // With its schema, a ZonedTimestamp is written as Debezium writes it (UTC, six fraction digits,
  // `Z`); tidewire drops the trailing zeros, as the direct path's text has none (debezium-values.ts).
  for (const image of ['before', 'after']) {
    const r = payload[image];
    if (r && typeof r === 'object' && !Array.isArray(r) && typeof r.updated_at === 'string') payload[image] = { ...r, updated_at: r.updated_at.replace(/(\.\d+)?Z$/, (_, f?: string) => `${(f ?? '.').padEnd(7, '0')}Z`) };
  }
  const rowSchema = (field: string) => ({ type: 'struct', fields: ROW_FIELDS, optional: true, name: 'shop.public.prices.Value', field });
  return {
    schema: {
      type: 'struct',
      fields: [
        rowSchema('before'),
        rowSchema('after'),
        {
          type: 'struct', optional: false, name: 'io.debezium.connector.postgresql.Source', field: 'source',
          fields: ['version', 'connector', 'name'].map((f) => ({ type: 'string', optional: false, field: f })),
        },
        { type: 'struct', optional: true, name: 'event.block', version: 1, field: 'transaction', fields: [{ type: 'string', optional: false, field: 'id' }] },
        { type: 'string', optional: false, field: 'op' },
        { type: 'int64', optional: true, field: 'ts_ms' },
        { type: 'int64', optional: true, field: 'ts_us' },
        { type: 'int64', optional: true, field: 'ts_ns' },
      ],
      optional: false,
      name: 'shop.public.prices.Envelope',
      version: 2,
    },
    payload,
  };
}
/** `id` may be a placeholder string, replaced in the text afterwards (ids a double cannot hold). */
function debeziumKey(id: number | string, withSchema: boolean): string {
  const payload = { id };
  return JSON.stringify(withSchema ? { schema: { type: 'struct', fields: [ROW_FIELDS[0]], optional: false, name: 'shop.public.prices.Key' }, payload } : payload);
}

// ---------------------------------------------------------------------------------------------

test('JSON records become values; a changed record becomes a delta; tombstones remove their topics', async () => {
  const prices = await createTopic(name('prices'));
  const quotes = await createTopic(name('quotes'));
  const note = 'a long enough note that a one-field change is sent as a delta';
  await produce(prices, [{ key: 'AAPL', value: { venue: 'XNAS', symbol: 'AAPL', price: '189.10', qty: 100, note }, headers: { region: 'us' } }]);
  await produce(quotes, [{ key: 'EURUSD', value: { bid: 1.08 } }, { key: 'GBPUSD', value: { bid: 1.27 } }]);

  const h = harness({
    topics: [
      { topic: prices, format: 'json', path: 'prices/{headers.region}/{value.venue}/{key}', exclude: ['note'], tenant: 'acme' },
      { topic: quotes, format: 'json', path: 'quotes/{topic}/{partition}/{key}', tenantField: 'value.desk' },
    ],
  });
  // quotes records lack `desk`: bad records (no dead-letter topic here: counted and logged).
  await h.connector.start();
  assert.deepEqual(h.connector.health(), { name: 'kafka', state: 'streaming' });
  const t = h.store.get('prices/us/XNAS/AAPL')!;
  assert.deepEqual(t.value, { venue: 'XNAS', symbol: 'AAPL', price: '189.10', qty: 100 });
  assert.equal(t.tenant, 'acme');
  assert.equal(t.source, `kafka:${prices}`);
  assert.equal(t.version, 1);
  assert.equal(h.connector.stats().bad['missing-field'], 2);

  await produce(prices, [{ key: 'AAPL', value: { venue: 'XNAS', symbol: 'AAPL', price: '189.25', qty: 100, note }, headers: { region: 'us' } }]);
  const delta = await until('the delta', 20_000, () => h.batches.flatMap((b) => b.changes).find((c) => c.type === 'delta'));
  assert.deepEqual(JSON.parse(delta.wire), { type: 'delta', path: 'prices/us/XNAS/AAPL', version: 2, patch: [{ op: 'replace', path: '/price', value: '189.25' }] });

  // Tombstones: the quotes path uses only topic/partition/key, so a tombstone removes the topic.
  await produce(quotes, [{ key: 'EURUSD', value: { bid: 1.09, desk: 'fx' } }, { key: 'EURUSD', value: null }, { key: 'JPYUSD', value: { bid: 0.0067, desk: 'fx' } }]);
  // The prices path needs value fields: the mapper remembers AAPL's last path and removes it; a
  // tombstone for a key never seen has nothing to remove and is counted.
  await produce(prices, [{ key: 'AAPL', value: null, headers: { region: 'us' } }, { key: 'NEVER', value: null, headers: { region: 'us' } }]);
  await until('the quotes tombstone and the prices tombstones', 20_000, () => h.store.get(`quotes/${quotes}/0/JPYUSD`) && h.connector.stats().ignored['unmappable-tombstone'] === 1);
  const removal = h.batches.flatMap((b) => b.changes).find((c) => c.type === 'removal' && c.topic.path.startsWith('quotes/'))!;
  assert.deepEqual(JSON.parse(removal.wire), { type: 'removal', path: `quotes/${quotes}/0/EURUSD`, version: 2 });
  assert.equal(h.store.get(`quotes/${quotes}/0/EURUSD`), undefined);
  assert.equal(h.store.get(`quotes/${quotes}/0/JPYUSD`)!.tenant, 'fx');
  assert.equal(h.store.get('prices/us/XNAS/AAPL'), undefined, 'the tombstone removed the path AAPL was last mapped to');
  assert.deepEqual(h.violations, []);
  await h.connector.stop();
});

test('Debezium envelopes, with and without the schema wrapper, give the same topic state as the equivalent JSON; op d and tombstones remove', async () => {
  const rows: Record<number, JsonObject> = {
    1: { id: 1, venue: 'XNYS', price: '101.25', qty: 9007199254740991, updated_at: '2026-01-01T09:30:00.123456Z' },
    2: { id: 2, venue: 'XLON', price: '0.000100', qty: 5, updated_at: '2026-01-01T09:30:01Z' },
    3: { id: 3, venue: 'XPAR', price: '-7.5', qty: null, updated_at: '2026-01-01T09:30:02.5Z' },
  };
  const updated2 = { ...rows[2], price: '0.000200', updated_at: '2026-01-01T09:31:00Z' };
  const moved4 = { ...rows[3], id: 4 }; // a primary-key change 3 → 4

  const json = await createTopic(name('rows-json'));
  await produce(json, [
    ...[1, 2, 3].map((id) => ({ key: JSON.stringify({ id }), value: rows[id] })),
    { key: JSON.stringify({ id: 2 }), value: updated2 },
    { key: JSON.stringify({ id: 3 }), value: null },
    { key: JSON.stringify({ id: 4 }), value: moved4 },
    { key: JSON.stringify({ id: 1 }), value: null },
  ]);
  const dbzTopics: string[] = [];
  for (const withSchema of [false, true]) {
    const topic = await createTopic(name(withSchema ? 'rows-dbz-schema' : 'rows-dbz'));
    dbzTopics.push(topic);
    const k = (id: number) => debeziumKey(id, withSchema);
    await produce(topic, [
      ...[1, 2, 3].map((id) => ({ key: k(id), value: debeziumValue('r', null, rows[id], withSchema) })),
      { key: k(2), value: debeziumValue('u', null, updated2, withSchema) },
      // Debezium's key change: a delete of the old key, its tombstone, a create of the new key.
      { key: k(3), value: debeziumValue('d', { ...rows[3] }, null, withSchema) },
      { key: k(3), value: null },
      { key: k(4), value: debeziumValue('c', null, moved4, withSchema) },
      { key: k(1), value: debeziumValue('d', { ...rows[1] }, null, withSchema) },
      { key: k(1), value: null },
    ]);
  }
  // The same template for all three: the same rows must give the same topics, path and value.
  const path = 'prices/{key.id}';
  const hJson = harness({ topics: [{ topic: json, format: 'json', path }] });
  const hDbz = dbzTopics.map((topic) => harness({ topics: [{ topic, format: 'debezium', path }] }));
  // And a path with a value field, which Debezium deletes render from `before`.
  const hVenue = harness({ topics: [{ topic: dbzTopics[1], format: 'debezium', path: 'venues/{value.venue}/{key.id}' }] });
  const all = [hJson, ...hDbz, hVenue];
  await Promise.all(all.map((h) => h.connector.start()));

  const expected = [
    ['prices/2', updated2],
    ['prices/4', moved4],
  ];
  for (const h of [hJson, ...hDbz]) {
    assert.deepEqual([...storeState(h.store)].sort(), expected);
    assert.deepEqual(h.violations, []);
  }
  // What a client sees is identical too: the same values, deltas and removals with the same
  // versions. Debezium's delete + tombstone gives exactly one removal, like the JSON tombstone.
  const wires = (h: (typeof all)[number]) => h.batches.flatMap((b) => b.changes.map((c) => c.wire));
  assert.deepEqual(wires(hDbz[0]), wires(hJson));
  assert.deepEqual(wires(hDbz[1]), wires(hJson));
  assert.deepEqual(
    wires(hJson).map((w) => JSON.parse(w)).filter((m) => m.type === 'removal'),
    [
      { type: 'removal', path: 'prices/3', version: 2 },
      { type: 'removal', path: 'prices/1', version: 2 },
    ],
  );
  assert.equal(hDbz[0].connector.stats().tombstones, 2);

  assert.deepEqual([...storeState(hVenue.store)].sort(), [
    ['venues/XLON/2', updated2],
    ['venues/XPAR/4', moved4],
  ]);
  assert.equal(hVenue.connector.stats().ignored.tombstone, 2, "with a value path Debezium's own tombstones are skipped: the delete already removed the topic");
  await Promise.all(all.map((h) => h.connector.stop()));
});

test('Debezium tombstones: all counted in stats().tombstones; one alone (its delete compacted away) removes the topic; ignored.tombstone only when nothing is left to remove', async () => {
  const row = (id: number): JsonObject => ({ id, venue: 'XNYS', price: '1.00', qty: 1, updated_at: '2026-01-01T09:30:00Z' });
  const topic = await createTopic(name('dbz-tombstones'));
  await produce(topic, [
    { key: debeziumKey(5, true), value: debeziumValue('c', null, row(5), true) },
    { key: debeziumKey(6, true), value: debeziumValue('c', null, row(6), true) },
    // What a compacted topic can hold for a deleted key once compaction ran: the tombstone alone.
    { key: debeziumKey(5, true), value: null },
  ]);
  const byKey = harness({ topics: [{ topic, format: 'debezium', path: 'k/{key.id}' }] });
  const byValue = harness({ topics: [{ topic, format: 'debezium', path: 'v/{value.venue}/{key.id}' }] });
  await Promise.all([byKey.connector.start(), byValue.connector.start()]);
  assert.deepEqual([...storeState(byKey.store).keys()], ['k/6'], 'the tombstone alone removed k/5');
  assert.deepEqual([...storeState(byValue.store).keys()], ['v/XNYS/6'], 'and, by the remembered path, v/XNYS/5');
  for (const h of [byKey, byValue]) {
    assert.equal(h.connector.stats().tombstones, 1);
    assert.equal(h.connector.stats().ignored.tombstone, 0, 'a tombstone that removed a topic is not ignored');
  }
  // The usual pair: the delete removes the topic, the tombstone after it has nothing left to do.
  await produce(topic, [
    { key: debeziumKey(6, true), value: debeziumValue('d', row(6), null, true) },
    { key: debeziumKey(6, true), value: null },
  ]);
  await until('both tombstones read', 20_000, () => byKey.connector.stats().tombstones === 2 && byValue.connector.stats().tombstones === 2);
  assert.equal(byKey.store.size, 0);
  assert.equal(byValue.store.size, 0);
  assert.equal(byKey.connector.stats().ignored.tombstone, 0, 'a key-only path renders: its removal is applied (a no-op), not ignored');
  assert.equal(byValue.connector.stats().ignored.tombstone, 1, 'a value path has no remembered path after the delete: ignored');
  await Promise.all([byKey.connector.stop(), byValue.connector.stop()]);
});

test('Debezium ids beyond 2^53 stay exact: two neighbouring snowflake ids are two topics, and deleting one leaves the other (issue 14)', async () => {
  // JSON.parse rounds both ids to 1234567890123456800: one topic, and the delete removed it.
  const ids = ['1234567890123456789', '1234567890123456790'];
  const big = (text: string, id: string) => text.replaceAll('"BIG_ID"', id);
  const row: JsonObject = ({ id: 'BIG_ID', venue: 'XNYS', price: '1.50', qty: 'BIG_QTY', updated_at: '2026-01-01T09:30:00Z' });
  const topic = await createTopic(name('big-ids'));
  const records: Rec[] = [];
  for (const withSchema of [true, false]) {
    for (const id of ids) {
      const key = big(debeziumKey('BIG_ID', withSchema), id);
      const value = big(JSON.stringify(debeziumValue('c', null, row, withSchema)), id).replace('"BIG_QTY"', '-9007199254740993');
      records.push({ key, value });
    }
  }
  await produce(topic, records);
  const h = harness({ topics: [{ topic, format: 'debezium', path: 'shop/{topic}/{key.id}' }] });
  await h.connector.start();
  const expected = (id: string) => ({ id, venue: 'XNYS', price: '1.50', qty: '-9007199254740993', updated_at: '2026-01-01T09:30:00Z' });
  // The exact text, as the Postgres connector gives int8 beyond 2^53, names the path and the value.
  assert.deepEqual([...storeState(h.store)].sort(), ids.map((id) => [`shop/${topic}/${id}`, expected(id)]));

  const deleted = ids[0];
  await produce(topic, [
    { key: big(debeziumKey('BIG_ID', true), deleted), value: big(JSON.stringify(debeziumValue('d', { id: 'BIG_ID' }, null, true)), deleted) },
    { key: big(debeziumKey('BIG_ID', true), deleted), value: null },
  ]);
  await until('the delete and its tombstone', 20_000, () => h.connector.stats().tombstones === 1 && h.store.get(`shop/${topic}/${deleted}`) === undefined);
  assert.deepEqual([...storeState(h.store)], [[`shop/${topic}/${ids[1]}`, expected(ids[1])]], 'the neighbouring id is still there');
  assert.deepEqual(h.violations, []);
  await h.connector.stop();
});

test('a connector stopped while a producer writes, and a new one started with a new store, loses nothing', async () => {
  const topic = await createTopic(name('restart'), 3);
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
  const latest = new Map<string, JsonValue>();
  // Keys written once, before the first connector: a new process must rebuild them from the
  // earliest offset, not resume from the group's committed offset.
  const once = Array.from({ length: 20 }, (_, i) => ({ key: `once${i}`, value: { key: `once${i}`, v: i } }));
  await produce(topic, once);
  for (const r of once) latest.set(`r/${r.key}`, r.value);
  let producing = true;
  let sent = 0;
  const writer = (async () => {
    for (let round = 0; producing || round < 10; round++) {
      const batch = keys.map((key) => ({ key, value: { key, round, pad: 'x'.repeat(40) } }));
      await produce(topic, batch);
      for (const r of batch) latest.set(`r/${r.key}`, r.value);
      sent += batch.length;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const groupId = name('restart-group');
  const first = harness({ groupId, topics: [{ topic, format: 'json', path: 'r/{key}' }] });
  await first.connector.start();
  await until('the first connector applying records while the producer writes', 20_000, () => first.connector.stats().applied > 400);
  await first.connector.stop();
  const stoppedAt = sent;

  const second = harness({ groupId, topics: [{ topic, format: 'json', path: 'r/{key}' }] });
  await second.connector.start();
  producing = false;
  await writer;
  assert.ok(sent > stoppedAt, 'the producer kept writing across the restart');
  await until('the new store to hold the latest value of every key', 20_000, () => sameState(storeState(second.store), latest), () => diffState(storeState(second.store), latest));
  assert.notEqual(second.store.epoch, first.store.epoch, 'a new process state is a new epoch');
  assert.deepEqual(second.violations, []);
  assert.ok(sameState(second.live(), latest), 'what a client rebuilt from the batches is the latest value of every key');
  // Offsets are committed after each applied batch: the group shows no lag for monitoring.
  assert.equal(await settledLag(groupId, topic), 0);
  assert.equal(second.connector.stats().partitions.reduce((n, p) => n + (p.lag ?? 0), 0), 0);
  await second.connector.stop();
});

test('a rebalance (a second member joins, consumes, leaves) loses nothing: the partitions come back at this process position, not the committed one', async () => {
  const topic = await createTopic(name('rebalance'), 4);
  const groupId = name('rebalance-group');
  const mapping = [{ topic, format: 'json' as const, path: 'rb/{key}' }];
  const keys = Array.from({ length: 24 }, (_, i) => `k${i}`);
  const latest = new Map<string, JsonValue>();
  let seq = 0;
  const round = async () => {
    seq++;
    const batch = keys.map((key) => ({ key, value: { key, seq } }));
    await produce(topic, batch);
    for (const r of batch) latest.set(`rb/${r.key}`, r.value);
  };
  const a = harness({ groupId, topics: mapping });
  await round();
  await a.connector.start();
  assert.equal(a.store.size, keys.length);

  const b = harness({ groupId, topics: mapping });
  await b.connector.start(); // the group rebalances: b takes some partitions
  await until('b to hold part of the partitions', 20_000, () => b.store.size > 0 && b.store.size < keys.length);
  // Written while b holds its partitions: only b applies these, and commits past them.
  for (let i = 0; i < 5; i++) await round();
  await until('b to apply the records of its partitions', 20_000, () => [...b.store.all()].every((t) => (t.value as { seq: number }).seq === seq));
  assert.ok([...a.store.all()].some((t) => (t.value as { seq: number }).seq < seq), 'a missed the records of the partitions b held');
  await b.connector.stop(); // a gets every partition back
  await until('a to hold the latest value of every key', 20_000, () => sameState(storeState(a.store), latest), () => diffState(storeState(a.store), latest));
  assert.deepEqual(a.violations, []);
  assert.deepEqual(b.violations, []);
  assert.equal(await settledLag(groupId, topic), 0);
  await a.connector.stop();
});

test('bad records go to the dead-letter topic with their origin; later good records on the same partition still arrive', async () => {
  const topic = await createTopic(name('bad'));
  const dlq = await createTopic(name('dlq'));
  const h = harness({ deadLetterTopic: dlq, maxValueBytes: 256, topics: [{ topic, format: 'json', path: 'b/{value.id}' }] });
  await h.connector.start();
  await produce(topic, [
    { key: 'g1', value: { id: 1 } },
    { key: 'b1', value: '{"id": 2,', headers: { trace: 't-1' } },
    { key: 'b2', value: { name: 'no id' } },
    { key: 'b3', value: { id: 3, blob: 'z'.repeat(300) } },
    { key: 'g2', value: { id: 4 } },
  ]);
  await until('the good record after the bad ones', 20_000, () => h.store.get('b/4'));
  assert.deepEqual([...storeState(h.store).keys()].sort(), ['b/1', 'b/4']);
  const stats: KafkaConnectorStats = h.connector.stats();
  assert.deepEqual(stats.bad, { 'invalid-json': 1, 'not-an-object': 0, 'missing-field': 1, 'too-large': 1, 'invalid-envelope': 0, 'invalid-path': 0 });
  assert.equal(stats.deadLettered, 3);
  assert.equal(h.connector.health().state, 'streaming', 'bad records neither crash nor degrade the connector');

  // A short fetch wait: disconnect() waits for the fetch in flight.
  const reader = kafka.consumer({ groupId: name('dlq-reader'), maxWaitTimeInMs: 100 });
  const got: { key: string; value: string; headers: Record<string, string> }[] = [];
  await reader.connect();
  await reader.subscribe({ topic: dlq, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      got.push({ key: String(message.key), value: String(message.value), headers });
    },
  });
  await until('three dead letters', 20_000, () => got.length >= 3);
  await reader.disconnect();
  assert.deepEqual(
    got.map((g) => [g.key, g.headers['tidewire-error'].split(':')[0], g.headers['tidewire-source-topic'], g.headers['tidewire-source-partition'], g.headers['tidewire-source-offset']]),
    [
      ['b1', 'invalid-json', topic, '0', '1'],
      ['b2', 'missing-field', topic, '0', '2'],
      ['b3', 'too-large', topic, '0', '3'],
    ],
  );
  assert.equal(got[0].value, '{"id": 2,', 'the original value, byte for byte');
  assert.equal(got[0].headers.trace, 't-1', 'the original headers');
  assert.equal(await settledLag(h.groupId, topic), 0, 'the offset moved past the dead-lettered records');
  await h.connector.stop();
});

test('several partitions: per path, versions and produced order are kept; the final value is the last produced', async () => {
  const topic = await createTopic(name('order'), 4);
  const h = harness({ topics: [{ topic, format: 'json', path: 'o/{partition}/{key}' }] });
  await h.connector.start();
  const keys = Array.from({ length: 24 }, (_, i) => `k${i}`);
  const last = new Map<string, number>();
  for (let seq = 1; seq <= 60; seq++) {
    await produce(topic, keys.map((key) => ({ key, value: { key, seq, at: `t${seq}` } })));
  }
  const parts = await admin.fetchTopicOffsets(topic);
  assert.ok(parts.filter((p) => Number(p.high) > 0).length >= 3, 'the keys spread over the partitions');
  await until('60 versions of every key', 30_000, () => [...h.seen.values()].filter((s) => s.version === 60).length === keys.length && h.seen.size === keys.length, () => `${h.seen.size} paths, ${[...h.seen.values()].map((s) => s.version).join(',')}`);
  for (const [path, s] of h.seen) {
    last.set(path, (s.value as { seq: number }).seq);
    assert.deepEqual(h.versions.get(path), Array.from({ length: 60 }, (_, i) => i + 1), `${path}: every version once, in order`);
  }
  assert.ok([...last.values()].every((seq) => seq === 60), 'the client holds the last produced value of every key');
  assert.deepEqual(h.violations, []);
  await h.connector.stop();
});

test('transactions: committed records arrive, aborted ones do not, and trailing commit markers do not stall the catch-up', async () => {
  const topic = await createTopic(name('txn'));
  const tx = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, transactionalId: name('txid'), idempotent: true, maxInFlightRequests: 1 });
  await tx.connect();
  try {
    const write = async (records: { key: string; value: JsonObject }[], commit: boolean) => {
      const t = await tx.transaction();
      await t.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.key, value: JSON.stringify(r.value) })) });
      await (commit ? t.commit() : t.abort());
    };
    await write([{ key: 'a', value: { n: 1 } }, { key: 'b', value: { n: 1 } }], true);
    await write([{ key: 'a', value: { n: 666 } }, { key: 'c', value: { n: 666 } }], false);
    await write([{ key: 'b', value: { n: 2 } }], true);
  } finally {
    await tx.disconnect();
  }
  // The log ends with a commit marker: the end offset at start is one past a record no consumer is handed.
  const h = harness({ topics: [{ topic, format: 'json', path: 't/{key}' }] });
  await h.connector.start();
  assert.deepEqual([...storeState(h.store)].sort(), [
    ['t/a', { n: 1 }],
    ['t/b', { n: 2 }],
  ]);
  const [p] = h.connector.stats().partitions;
  assert.equal(p.position, Number((await admin.fetchTopicOffsets(topic))[0].high), 'the position moved past the markers');
  await h.connector.stop();
});

test('a broker killed (SIGKILL) and started again while a producer writes: nothing lost, health degraded then streaming', async () => {
  const topic = await createTopic(name('kill'), 2);
  const h = harness({ topics: [{ topic, format: 'json', path: 'k/{key}' }] });
  await h.connector.start();
  const states: string[] = [];
  const poll = setInterval(() => {
    const s = h.connector.health().state;
    if (states[states.length - 1] !== s) states.push(s);
  }, 25);
  const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
  const acked = new Map<string, JsonValue>();
  let writing = true;
  let failures = 0;
  const writer = (async () => {
    for (let seq = 1; writing || seq < 40; seq++) {
      const batch = keys.map((key) => ({ key, value: { key, seq } }));
      // Retry the same batch until acknowledged: a send that failed may still have been written,
      // and retrying it keeps "the latest value per key" unambiguous.
      for (;;) {
        try {
          await produce(topic, batch);
          break;
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      for (const r of batch) acked.set(`k/${r.key}`, r.value);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await until('records flowing', 20_000, () => h.store.size === keys.length);
    const t0 = Date.now();
    await broker.kill();
    await until('health degraded', 15_000, () => h.connector.health().state === 'degraded');
    const degradedAfter = Date.now() - t0;
    await broker.start();
    const restartedAfter = Date.now() - t0;
    await until('health streaming again', 60_000, () => h.connector.health().state === 'streaming', () => JSON.stringify(h.connector.health()));
    console.log(
      `[kafka] kill: degraded after ${degradedAfter} ms, broker back after ${restartedAfter} ms, streaming after ${Date.now() - t0} ms; ` +
        `${h.connector.stats().restarts} consumer restart(s), ${failures} failed sends retried`,
    );
    writing = false;
    await writer;
    await until('the latest acknowledged value of every key', 30_000, () => sameState(storeState(h.store), acked), () => diffState(storeState(h.store), acked));
  } finally {
    writing = false;
    clearInterval(poll);
  }
  assert.deepEqual(states.slice(0, 1), ['streaming']);
  assert.ok(states.indexOf('degraded') > 0 && states.lastIndexOf('streaming') > states.indexOf('degraded'), `states seen: ${states.join(' → ')}`);
  assert.deepEqual(h.violations, [], 'no version went back or skipped: nothing applied twice or out of order');
  assert.ok(sameState(h.live(), acked));
  await h.connector.stop();
});

test('start() fails with KAFKA_UNREACHABLE when no broker answers within connectTimeoutMs', async () => {
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const store = new TopicStore();
  const connector = new KafkaConnector(
    { brokers: [`127.0.0.1:${port}`], connectTimeoutMs: 1_500, topics: [{ topic: 'x', format: 'json', path: 'x/{key}' }] },
    new Pipeline(store, new InProcessHandoff(store)),
    { logger },
  );
  const t0 = Date.now();
  await assert.rejects(connector.start(), (e: unknown) => {
    assert.ok(e instanceof KafkaConnectorError, String(e));
    assert.equal(e.code, 'KAFKA_UNREACHABLE');
    assert.match(e.message, /check kafka\.brokers/);
    return true;
  });
  assert.ok(Date.now() - t0 < 10_000);
  assert.equal(connector.health().state, 'failed');
});

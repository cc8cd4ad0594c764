/**
 * Debezium-aware values (issue 14): the change events real Debezium 3.6.1 wrote for a table with
 * every type of README "Values" (test/fixtures/debezium-3.6.1.Final, all Debezium settings at
 * their defaults, JsonConverter with schemas) are produced to a real broker and read by the Kafka
 * connector with `format: debezium`; the same rows are read from a real Postgres by tidewire's own
 * Postgres connector. Both must give the same paths and, column by column, the same values —
 * except the columns README names as different, which must differ exactly as it says.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { KafkaConnector } from '../../connectors/kafka/index.ts';
import { PostgresConnector } from '../../connectors/postgres/index.ts';
import type { IngestSink } from '../../core/ingest.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import type { JsonObject, JsonValue } from '../../core/json.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';

const FIXTURES = new URL('../fixtures/debezium-3.6.1.Final/', import.meta.url).pathname;
const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });
const TOPIC = 'shop.public.all_types';

let db: TestPostgres;
let broker: KafkaBroker;
const stops: (() => Promise<void>)[] = [];

before(async () => {
  [db, broker] = await Promise.all([startPostgres(), startKafka()]);
  for (const f of ['types.sql', 'rows-snapshot.sql', 'rows-stream.sql']) await db.query(readFileSync(join(FIXTURES, f), 'utf8'));
  const records = readFileSync(join(FIXTURES, 'records.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { key: string | null; value: string | null });
  const kafka = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  // The exact bytes Debezium wrote: integers beyond 2^53 included.
  await producer.send({ topic: TOPIC, acks: -1, messages: records.map((r) => ({ key: r.key, value: r.value })) });
  await producer.disconnect();
});
after(async () => {
  for (const stop of stops) await stop().catch(() => {});
  await Promise.all([db?.stop(), broker?.stop()]);
});

async function direct(): Promise<Map<string, JsonObject>> {
  const store = new TopicStore();
  const sink: IngestSink = {
    apply: async (u) => void store.apply(u),
    removeSource: async (s) => void store.removeSource(s),
  };
  const c = new PostgresConnector({ url: db.url, slot: 'direct', publication: 'direct', snapshotBatchRows: 1000, statusIntervalMs: 100, tables: [{ table: 'public.all_types', path: 't/{id}' }] }, sink, { logger });
  stops.push(() => c.stop());
  await c.start();
  return new Map([...store.all()].map((t) => [t.path, t.value as JsonObject]));
}

async function viaKafka(values?: 'postgres' | 'raw'): Promise<Map<string, JsonObject>> {
  const store = new TopicStore();
  const c = new KafkaConnector(
    { brokers: broker.brokers, groupId: `values-${values ?? 'default'}`, topics: [{ topic: TOPIC, format: 'debezium', path: 't/{key.id}', ...(values ? { values } : {}) }] } as never,
    new Pipeline(store, new InProcessHandoff(store)),
    { logger },
  );
  stops.push(() => c.stop());
  await c.start();
  assert.deepEqual(c.stats().bad, { 'invalid-json': 0, 'not-an-object': 0, 'missing-field': 0, 'too-large': 0, 'invalid-envelope': 0, 'invalid-path': 0 });
  return new Map([...store.all()].map((t) => [t.path, t.value as JsonObject]));
}

/**
 * Where Debezium's record does not hold the direct path's value (README, connectors/kafka): how
 * each such column must differ, given the direct value and the one from Kafka.
 */
const KNOWN_DIFFERENCES: Record<string, (direct: JsonValue, kafka: JsonValue) => boolean> = {
  // Debezium drops trailing zeros of an unbounded numeric before writing it: 1.50 arrives as 1.5.
  c_numeric: (d, k) => typeof d === 'string' && typeof k === 'string' && (d === k || (d.includes('.') && d.replace(/\.?0+$/, '') === k)),
  // A varbit's Bits schema has the declared length, not the value's: padded with zeros to it.
  c_varbit: (d, k) => typeof d === 'string' && k === d.padStart(20, '0'),
  // money arrives as a Decimal: the amount without the currency format of lc_monetary.
  c_money: (d, k) => typeof d === 'string' && typeof k === 'string' && d.replace(/[$,]/g, '') === k,
  // interval arrives as MicroDuration, µs with a month of 30 days: a number, never the text.
  c_interval: (d, k) => typeof d === 'string' && typeof k === 'number',
};

test('Debezium records with schemas give the direct path’s paths and values, column by column', async () => {
  const [expected, actual] = await Promise.all([direct(), viaKafka()]);
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), 'the same topics, snowflake id included');
  assert.ok(expected.has('t/1234567890123456789'));
  assert.equal(expected.size, 6);
  const columns = Object.keys(expected.get('t/1')!);
  assert.equal(columns.length, 27);
  const checked = new Set<string>();
  for (const [path, want] of expected) {
    const got = actual.get(path)!;
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), path);
    for (const col of columns) {
      const d = want[col];
      const k = got[col];
      if (d === null) {
        assert.equal(k, null, `${path} ${col}`);
        continue;
      }
      const differs = KNOWN_DIFFERENCES[col];
      if (differs) assert.ok(differs(d, k), `${path} ${col}: direct ${JSON.stringify(d)}, via Debezium ${JSON.stringify(k)}, not the documented difference`);
      else assert.deepStrictEqual(k, d, `${path} ${col}`);
      checked.add(col);
    }
  }
  assert.equal(checked.size, columns.length, 'every column was compared on a non-null value');
  // The documented differences do show in these rows (the fixtures exercise them).
  assert.equal(expected.get('t/1')!.c_numeric, '1.50');
  assert.equal(actual.get('t/1')!.c_numeric, '1.5');
});

test('values: raw passes Debezium’s encodings through', async () => {
  const raw = await viaKafka('raw');
  const row = raw.get('t/1')!;
  assert.equal(row.c_date, 20679, 'days since 1970');
  assert.equal(row.c_timestamptz, '2026-01-01T09:30:00.123456Z');
  assert.equal(row.c_bytea, 'AP8Q', 'base64');
  assert.equal(row.c_jsonb, '{"n": 12345, "s": "x"}', 'JSON as text');
  assert.deepEqual(row.c_numeric, { scale: 1, value: 'Dw==' });
  assert.equal(raw.get('t/4')!.c_int8, '9223372036854775807', 'integers beyond 2^53 stay exact in raw mode too');
});

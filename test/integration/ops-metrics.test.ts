/**
 * GET /metrics and GET /ready on a running service with real Postgres and Kafka: after some row
 * changes, Kafka records (one of them bad) and a WebSocket client, the Prometheus text format
 * carries the documented metrics with values that match what happened.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import WebSocket from 'ws';
import { parseLsn } from '../../connectors/postgres/index.ts';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

let db: TestPostgres;
let kafka: KafkaBroker;
let service: TidewireService;
const stateDir = mkdtempSync(join(tmpdir(), 'tidewire-ops-metrics-'));
let port: number;
const ROWS = 50;

before(async () => {
  [db, kafka] = await Promise.all([startPostgres(), startKafka()]);
  await db.query(`CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL, note text NOT NULL)`);
  await db.query(`INSERT INTO orders SELECT i, i % 5, 'new', repeat('a long note ', 20) FROM generate_series(1, ${ROWS}) i`);
  await db.query('ANALYZE orders');
  const k = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING });
  const admin = k.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'prices', numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  await produce([{ key: 'a', value: '{"bid":1}' }, { key: 'b', value: '{"bid":2}' }]);
  const config = parseConfig({
    server: { port: 0 },
    log: { level: 'silent' },
    metrics: { replicationLagIntervalMs: 200 },
    state: { dir: stateDir, cacheTopics: 20 },
    postgres: { url: db.url, slot: 'metrics_slot', publication: 'metrics_pub', statusIntervalMs: 200, tables: [{ table: 'orders', path: 'orders/{customer_id}/{id}' }] },
    kafka: { brokers: kafka.brokers, groupId: 'ops-metrics', topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}' }] },
  }, {});
  service = new TidewireService(config, { logger: pino({ level: 'silent' }) });
  ({ port } = await service.start());
});
after(async () => {
  await service?.stop();
  await Promise.all([db?.stop(), kafka?.stop()]);
  rmSync(stateDir, { recursive: true, force: true });
});

async function produce(messages: Array<{ key: string; value: string }>): Promise<void> {
  const producer = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  await producer.send({ topic: 'prices', messages });
  await producer.disconnect();
}

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The Prometheus text exposition format, as far as these tests need it. */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name, type);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

async function scrape() {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const parsed = parseMetrics(await r.text());
  const get = (name: string, labels: Record<string, string> = {}): number | undefined =>
    parsed.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  return { ...parsed, get };
}

function client(): Promise<{ ws: WebSocket; deltas: () => number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    let deltas = 0;
    ws.on('message', (data) => {
      for (const m of JSON.parse(String(data)) as Array<{ type: string }>) {
        if (m.type === 'delta') deltas++;
        if (m.type === 'subscribed') resolve({ ws, deltas: () => deltas });
      }
    });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector: 'orders/**' })));
    ws.on('error', reject);
  });
}

test('/metrics exposes the documented metrics with values that match what happened', async () => {
  const c = await client();
  // One transaction of 10 updates; its LSN must end up confirmed.
  await db.query('BEGIN');
  await db.query(`UPDATE orders SET status = 'shipped' WHERE id <= 10`);
  const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  await db.query('COMMIT');
  const changeLsn = Number(parseLsn(rows[0].lsn));
  await waitFor('10 deltas at the client', () => c.deltas() === 10);
  await produce([{ key: 'c', value: '{"bid":3}' }, { key: 'd', value: 'not json' }]);

  const m = (await waitFor('the lag read, the acknowledgement and the Kafka records', async () => {
    const s = await scrape();
    const acked = s.get('tidewire_postgres_confirmed_lsn', { slot: 'metrics_slot' }) ?? 0;
    const lag = s.get('tidewire_postgres_replication_lag_bytes', { slot: 'metrics_slot' });
    return acked >= changeLsn && lag !== undefined && lag < 100_000 && s.get('tidewire_kafka_records_total') === 4 ? s : null;
  }, 20_000, 100))!;

  // Node state
  assert.equal(m.get('tidewire_ready'), 1);
  assert.equal(m.get('tidewire_source_state', { source: 'postgres', state: 'streaming' }), 1);
  assert.equal(m.get('tidewire_source_state', { source: 'postgres', state: 'snapshotting' }), 0);
  assert.equal(m.get('tidewire_source_state', { source: 'kafka', state: 'streaming' }), 1);
  assert.equal(m.get('tidewire_topics'), ROWS + 3, '50 rows and prices a, b, c');
  // Durable state: once every change is durable, the heap holds only the cache of the topics changed last (state.cacheTopics).
  const heap = (await waitFor('every change durable', async () => {
    const s = await scrape();
    return s.get('tidewire_topics_on_heap', { kind: 'pinned' }) === 0 ? s : null;
  }, 10_000, 100))!;
  assert.equal(heap.get('tidewire_topics_on_heap', { kind: 'cached' }), 20, 'the 20 changed last of the 53: the cache is bounded by state.cacheTopics');
  // Postgres
  assert.equal(m.get('tidewire_snapshot_rows', { table: 'public.orders' }), ROWS);
  assert.equal(m.get('tidewire_snapshot_rows_estimated', { table: 'public.orders' }), ROWS);
  const lagSeconds = m.get('tidewire_postgres_replication_lag_seconds', { slot: 'metrics_slot' })!;
  assert.ok(lagSeconds >= 0 && lagSeconds < 30, `lag seconds ${lagSeconds}`);
  assert.ok(m.get('tidewire_postgres_applied_lsn', { slot: 'metrics_slot' })! > changeLsn);
  assert.equal(m.get('tidewire_postgres_slot_active', { slot: 'metrics_slot' }), 1);
  assert.equal(m.get('tidewire_postgres_queued_messages', { slot: 'metrics_slot' }), 0);
  assert.ok(m.get('tidewire_postgres_transactions_applied_total', { slot: 'metrics_slot' })! >= 1);
  assert.equal(m.get('tidewire_source_errors_total', { source: 'postgres', kind: 'connection_lost' }), 0);
  // Kafka
  assert.equal(m.get('tidewire_kafka_consumer_lag', { topic: 'prices', partition: '0' }), 0);
  assert.equal(m.get('tidewire_bad_records_total', { source: 'kafka', reason: 'invalid-json' }), 1);
  assert.equal(m.get('tidewire_bad_records_total', { source: 'kafka', reason: 'missing-field' }), 0);
  assert.equal(m.get('tidewire_kafka_records_applied_total'), 3);
  // Topic state and distribution
  assert.ok(m.get('tidewire_updates_applied_total')! >= ROWS + 10 + 3);
  assert.equal(m.get('tidewire_changes_total', { type: 'delta' }), 10);
  const deltaBytes = m.get('tidewire_change_bytes_total', { type: 'delta' })!;
  const fullBytes = m.get('tidewire_delta_full_value_bytes_total')!;
  assert.ok(deltaBytes > 0 && fullBytes > 3 * deltaBytes, `deltas (${deltaBytes} B) are far smaller than the values they stand for (${fullBytes} B)`);
  assert.equal(m.get('tidewire_sessions'), 1);
  assert.equal(m.get('tidewire_subscriptions'), 1);
  assert.ok(m.get('tidewire_messages_out_total')! >= ROWS + 10, 'the 50 values and 10 deltas');
  assert.ok(m.get('tidewire_bytes_out_total')! > fullBytes / 2);
  assert.equal(m.get('tidewire_connections_total'), 1);
  assert.equal(m.get('tidewire_sessions_behind'), 0);
  assert.equal(m.get('tidewire_conflations_total'), 0);
  assert.equal(m.get('tidewire_slow_clients_total'), 0);
  for (const gauge of ['tidewire_send_queue_messages', 'tidewire_send_queue_bytes', 'tidewire_socket_buffered_bytes', 'tidewire_conflated_topics']) {
    const v = m.get(gauge);
    assert.ok(v !== undefined && v >= 0, `${gauge} ${v}`);
  }
  // Types and process metrics
  assert.equal(m.types.get('tidewire_bytes_out_total'), 'counter');
  assert.equal(m.types.get('tidewire_postgres_replication_lag_bytes'), 'gauge');
  assert.ok(m.get('process_cpu_user_seconds_total')! > 0);
  assert.ok(m.get('nodejs_eventloop_lag_seconds') !== undefined);

  c.ws.close(1000);
  const closed = (await waitFor('the disconnect counted', async () => {
    const s = await scrape();
    return s.get('tidewire_disconnects_total', { reason: 'client' }) === 1 ? s : null;
  }))!;
  assert.equal(closed.get('tidewire_sessions'), 0);
});

test('/ready answers 200 with no reasons once every source streams; /metrics refuses other methods', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/ready`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { ready: true, reasons: [] });
  assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 405);
  assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
});

test('metrics.enabled: false serves no /metrics; /ready still answers, 503 until the sources stream', async () => {
  const config = parseConfig({ server: { port: 0 }, metrics: { enabled: false }, postgres: { url: db.url, slot: 'off_slot', tables: [{ table: 'orders', path: 'o/{id}' }] } }, {});
  const off = new TidewireService(config, { logger: pino({ level: 'silent' }) });
  assert.equal(off.metrics, null);
  const { port: p } = await off.distribution.listen();
  try {
    assert.equal((await fetch(`http://127.0.0.1:${p}/metrics`)).status, 404);
    const ready = await fetch(`http://127.0.0.1:${p}/ready`);
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { ready: boolean; reasons: string[] };
    assert.equal(body.ready, false);
    assert.match(body.reasons[0], /^postgres: /);
  } finally {
    await off.distribution.close();
  }
});

test('with security, /metrics needs a token of an admin role', async () => {
  const secret = 'ops-metrics-secret-0123456789-0123456789';
  const config = parseConfig({
    server: { port: 0 },
    postgres: { url: db.url, slot: 'sec_slot', tables: [{ table: 'orders', path: 'o/{id}' }] },
    security: { jwt: { algorithms: ['HS256'], secret }, roles: { ops: { admin: 'server' }, reader: { read: ['o/**'] } } },
  }, {});
  const secured = new TidewireService(config, { logger: pino({ level: 'silent' }) });
  const { port: p } = await secured.distribution.listen();
  const token = (roles: string[]) =>
    new SignJWT({ sub: 'u', tenant: 't', roles, exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
  try {
    const get = async (t?: string) => (await fetch(`http://127.0.0.1:${p}/metrics`, { headers: t ? { authorization: `Bearer ${t}` } : {} })).status;
    assert.equal(await get(), 401);
    assert.equal(await get(await token(['reader'])), 403);
    assert.equal(await get(await token(['ops'])), 200);
  } finally {
    await secured.distribution.close();
  }
});

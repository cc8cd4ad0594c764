// The Postgres connector against a real Postgres 17 (wal_level=logical): preflight errors,
// snapshot then streaming, value conversion, TOAST, schema changes, acknowledgement.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pino from 'pino';
import type { IngestSink } from '../../core/ingest.ts';
import { PostgresConnector, PostgresConnectorError, postgresSourceName, type SnapshotProgress } from '../../connectors/postgres/index.ts';
import type { PostgresConfig, TableMapping } from '../../services/config/config.ts';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';
import { freePort, startPostgres, type TestPostgres } from '../support/postgres.ts';

const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });

/** Applies into a real TopicStore and records every call and how many changes it produced. */
class RecordingSink implements IngestSink {
  readonly store = new TopicStore();
  readonly calls: { updates: TopicUpdate[]; removed?: string; changes: number }[] = [];
  async apply(updates: readonly TopicUpdate[]): Promise<void> {
    const batch = this.store.apply(updates);
    this.calls.push({ updates: [...updates], changes: batch?.changes.length ?? 0 });
  }
  async removeSource(source: string): Promise<void> {
    const batch = this.store.removeSource(source);
    this.calls.push({ updates: [], removed: source, changes: batch?.changes.length ?? 0 });
  }
  value(path: string): JsonObject | undefined {
    return this.store.get(path)?.value;
  }
  paths(): string[] {
    return [...this.store.all()].map((t) => t.path).sort();
  }
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let db: TestPostgres;
const running: PostgresConnector[] = [];

before(async () => {
  db = await startPostgres();
});

after(async () => {
  for (const c of running) await c.stop().catch(() => {});
  await db?.stop();
});

function connector(name: string, tables: TableMapping[], sink: IngestSink, extra: Partial<PostgresConfig> = {}, onSnapshotProgress?: (p: SnapshotProgress) => void): PostgresConnector {
  const c = new PostgresConnector(
    { url: db.url, slot: name, publication: name, snapshotBatchRows: 1000, statusIntervalMs: 100, tables, ...extra },
    sink,
    { logger, reconnect: { initialMs: 50, maxMs: 500 }, onSnapshotProgress },
  );
  running.push(c);
  return c;
}

async function startFails(c: PostgresConnector, check: (err: unknown) => boolean): Promise<void> {
  await assert.rejects(c.start(), (err: unknown) => {
    assert.ok(check(err), `unexpected error: ${err instanceof Error ? `${(err as PostgresConnectorError).code} ${err.message}` : err}`);
    return true;
  });
  assert.equal(c.health().state, 'failed');
}

const hasCode = (code: string) => (err: unknown) => err instanceof PostgresConnectorError && err.code === code;

async function slotExists(name: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name])).rowCount === 1;
}

test('preflight: a missing table, a table without a key, bad path or include — clear errors, nothing created', async () => {
  await db.query('CREATE TABLE pf_ok (id int PRIMARY KEY, name text); CREATE TABLE pf_nokey (id int, name text)');
  const sink = new RecordingSink();

  await startFails(connector('pf_a', [{ table: 'pf_missing', path: 'x/{id}' }], sink), (err) => hasCode('PG_TABLE_MISSING')(err) && /public\.pf_missing does not exist/.test((err as Error).message));
  assert.match(running.at(-1)!.health().detail ?? '', /pf_missing/);

  await startFails(connector('pf_b', [{ table: 'pf_ok', path: 'ok/{id}' }, { table: 'pf_nokey', path: 'nk/{id}' }], sink), (err) =>
    hasCode('PG_NO_PRIMARY_KEY')(err) && /postgres\.tables\.1\.table: public\.pf_nokey has no primary key/.test((err as Error).message),
  );
  // Refused before the publication: a published table without replica identity would reject the app's UPDATEs.
  assert.equal((await db.query(`SELECT 1 FROM pg_publication WHERE pubname = 'pf_b'`)).rowCount, 0);
  await db.query(`INSERT INTO pf_nokey VALUES (1, 'a'); UPDATE pf_nokey SET name = 'b'`);

  const isConfig = (key: string, re: RegExp) => (err: unknown) => err instanceof ConfigError && err.key === key && re.test(err.message);
  await startFails(connector('pf_c', [{ table: 'pf_ok', path: 'ok/{nme}/{id}' }], sink), isConfig('postgres.tables.0.path', /"nme" is not a column of public\.pf_ok/));
  await startFails(connector('pf_d', [{ table: 'pf_ok', path: 'ok/{name}' }], sink), isConfig('postgres.tables.0.path', /add \{id\}/));
  await startFails(connector('pf_e', [{ table: 'pf_ok', path: 'ok/{id}', include: ['id', 'nam'] }], sink), isConfig('postgres.tables.0.include', /"nam" is not a column/));
  assert.throws(() => connector('pf_f', [{ table: 'pf_ok', path: 'ok/x{id}' }], sink), (err: unknown) => err instanceof ConfigError && err.key === 'postgres.tables.0.path', 'template syntax is checked at construction');

  for (const s of ['pf_a', 'pf_b', 'pf_c', 'pf_d', 'pf_e']) assert.equal(await slotExists(s), false, `no slot ${s}`);
  assert.equal(sink.calls.length, 0);
});

test('preflight: a role without REPLICATION, a wrong password, an unreachable server', async () => {
  await db.query(`CREATE TABLE pf_role (id int PRIMARY KEY); CREATE ROLE tw_plain LOGIN PASSWORD 'pw'; GRANT SELECT ON pf_role TO tw_plain`);
  const url = new URL(db.url);
  const as = (user: string, password: string, port = url.port) => {
    const u = new URL(db.url);
    u.username = user;
    u.password = password;
    u.port = port;
    return u.toString();
  };
  const tables = [{ table: 'pf_role', path: 'r/{id}' }];
  const sink = new RecordingSink();
  await startFails(connector('pf_role', tables, sink, { url: as('tw_plain', 'pw') }), (err) =>
    hasCode('PG_NO_REPLICATION_PRIVILEGE')(err) && /ALTER ROLE "tw_plain" WITH REPLICATION/.test((err as Error).message) && !(err as PostgresConnectorError).retriable,
  );
  await startFails(connector('pf_role', tables, sink, { url: as('tw_plain', 'wrong') }), (err) => hasCode('PG_AUTH_FAILED')(err) && /password/.test((err as Error).message));
  const closed = await freePort();
  await startFails(connector('pf_role', tables, sink, { url: as('postgres', 'tidewire', String(closed)) }), (err) =>
    hasCode('PG_UNREACHABLE')(err) && (err as PostgresConnectorError).retriable && (err as Error).message.includes(`127.0.0.1:${closed}`) && !(err as Error).message.includes('tidewire@'),
  );
});

test('snapshot of existing rows, then insert, update, delete, key change and truncate stream in', async () => {
  await db.query(`CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, total numeric, note text)`);
  await db.query(`INSERT INTO orders SELECT i, 'c' || (i % 3), i * 10, NULL FROM generate_series(1, 2500) i`);
  const sink = new RecordingSink();
  const progress: SnapshotProgress[] = [];
  const c = connector('crud', [{ table: 'orders', path: 'customers/{customer}/orders/{id}', exclude: ['note'] }], sink, {}, (p) => progress.push(p));
  await c.start();
  assert.equal(c.health().state, 'streaming');
  assert.equal(sink.store.size, 2500);
  assert.deepEqual(sink.value('customers/c1/orders/1'), { id: 1, customer: 'c1', total: '10' });
  assert.deepEqual(progress.map((p) => p.rows), [1000, 2000, 2500], 'applied in snapshotBatchRows chunks');
  assert.deepEqual(c.health().snapshot.map((s) => [s.table, s.rows]), [['public.orders', 2500]]);
  const snapshotCalls = sink.calls.length;
  assert.equal(snapshotCalls, 3);

  await db.query(`INSERT INTO orders VALUES (3001, 'new', 1.5, 'x')`);
  await until('insert', () => sink.value('customers/new/orders/3001'));
  assert.deepEqual(sink.value('customers/new/orders/3001'), { id: 3001, customer: 'new', total: '1.5' });

  await db.query(`UPDATE orders SET total = 2.25 WHERE id = 3001`);
  await until('update', () => sink.value('customers/new/orders/3001')?.total === '2.25');

  // A change of a non-key path column moves the topic.
  await db.query(`UPDATE orders SET customer = 'moved' WHERE id = 3001`);
  await until('move', () => sink.value('customers/moved/orders/3001'));
  assert.equal(sink.value('customers/new/orders/3001'), undefined);

  // A primary-key change: old path removed, new one upserted, in one transaction's call.
  const before = sink.calls.length;
  await db.query(`UPDATE orders SET id = 4001 WHERE id = 3001`);
  await until('key change', () => sink.value('customers/moved/orders/4001'));
  assert.equal(sink.value('customers/moved/orders/3001'), undefined);
  assert.equal(sink.calls.length, before + 1);
  assert.deepEqual(sink.calls.at(-1)!.updates.map((u) => [u.path, u.value === null]), [
    ['customers/moved/orders/3001', true],
    ['customers/moved/orders/4001', false],
  ]);

  // A multi-statement transaction is one call.
  await db.query(`BEGIN; DELETE FROM orders WHERE id = 4001; UPDATE orders SET total = 0 WHERE id IN (1, 2); COMMIT`);
  await until('transaction', () => sink.value('customers/c2/orders/2')?.total === '0');
  assert.equal(sink.value('customers/moved/orders/4001'), undefined);
  assert.equal(sink.calls.at(-1)!.updates.length, 3);

  await db.query(`TRUNCATE orders`);
  await until('truncate', () => sink.store.size === 0);
  assert.equal(sink.calls.at(-1)!.removed, postgresSourceName('orders'));
  assert.equal(postgresSourceName('orders'), 'postgres:public.orders');
  await db.query(`INSERT INTO orders VALUES (1, 'again', 1, NULL)`);
  await until('insert after truncate', () => sink.value('customers/again/orders/1'));

  const h = c.health();
  assert.equal(h.state, 'streaming');
  assert.ok(h.transactionsApplied >= 7);
  // The slot confirms what we acknowledged: at least the last applied commit (keepalives may take it further).
  await until('the slot to confirm our acknowledgement', async () => {
    const { rows } = await db.query(`SELECT confirmed_flush_lsn::text AS lsn, confirmed_flush_lsn >= $1::pg_lsn AS covers FROM pg_replication_slots WHERE slot_name = 'crud'`, [h.lastAppliedLsn]);
    return rows[0].covers && rows[0].lsn === c.health().lastAckedLsn;
  });
  await c.stop();
  assert.equal(c.health().state, 'stopped');
  assert.equal(await slotExists('crud'), true, 'stop() keeps the slot');
  await until('walsender gone', async () => (await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'crud'`)).rows[0].active_pid === null);
});

const VALUE_COLUMNS = `
  n numeric, big int8, small int2, ts timestamptz, lts timestamp, d date, t time, j jsonb, js json, b bool,
  ints int[], texts text[], nums numeric[], f float8, fnan float8, bin bytea, u uuid, mood tw_mood, pos tw_pos, iv interval, nul text`;
const VALUES = `
  12345678901234567890.123456789, 9007199254740993, -7, '2024-05-06 07:08:09.123456+00', '2024-05-06 07:08:09.000001', '2024-05-06', '07:08:09.5',
  '{"a": {"b": [1, 2.5, null, "x"]}, "c": true}', '{"z": 1, "a": 2}', true,
  '{1,NULL,3}', '{"a b","NULL",NULL,"q\\"uote"}', '{1.10,2}', 0.1, 'NaN', '\\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', 42, '1 day 02:03:04', NULL`;

test('values convert identically from the snapshot and the stream, without precision loss', async () => {
  const { rows } = await db.query('SELECT current_database() AS name');
  // The connector fixes its session's TimeZone; a different database default must not leak in.
  await db.query(`ALTER DATABASE ${pg.escapeIdentifier(rows[0].name)} SET timezone = 'Asia/Kolkata'`);
  await db.query(`CREATE TYPE tw_mood AS ENUM ('happy', 'sad'); CREATE DOMAIN tw_pos AS int CHECK (VALUE > 0)`);
  await db.query(`CREATE TABLE vals (id int PRIMARY KEY, ${VALUE_COLUMNS})`);
  await db.query(`INSERT INTO vals VALUES (1, ${VALUES})`);
  const sink = new RecordingSink();
  const c = connector('vals', [{ table: 'vals', path: 'vals/{id}' }], sink);
  await c.start();
  await db.query(`INSERT INTO vals VALUES (2, ${VALUES})`);
  await until('streamed row', () => sink.value('vals/2'));
  const { id: _a, ...fromSnapshot } = sink.value('vals/1')!;
  const { id: _b, ...fromStream } = sink.value('vals/2')!;
  assert.deepEqual(fromStream, fromSnapshot, 'snapshot and stream agree');
  assert.deepEqual(fromSnapshot, {
    n: '12345678901234567890.123456789',
    big: '9007199254740993',
    small: -7,
    ts: '2024-05-06T07:08:09.123456Z',
    lts: '2024-05-06T07:08:09.000001',
    d: '2024-05-06',
    t: '07:08:09.5',
    j: { a: { b: [1, 2.5, null, 'x'] }, c: true },
    js: { z: 1, a: 2 },
    b: true,
    ints: [1, null, 3],
    texts: ['a b', 'NULL', null, 'q"uote'],
    nums: ['1.10', '2'],
    f: 0.1,
    fnan: 'NaN',
    bin: '\\xdeadbeef',
    u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    mood: 'happy',
    pos: 42,
    iv: '1 day 02:03:04',
    nul: null,
  });
  // Updating to another value of each type agrees too.
  await db.query(`UPDATE vals SET big = 5, ts = '1999-12-31 23:59:59.999999-08', ints = '{}' WHERE id = 2`);
  await until('update', () => sink.value('vals/2')?.big === 5);
  assert.equal(sink.value('vals/2')!.ts, '2000-01-01T07:59:59.999999Z');
  assert.deepEqual(sink.value('vals/2')!.ints, []);
  await c.stop();
});

test('an unchanged TOASTed value is kept, and an UPDATE to identical values changes nothing', async () => {
  await db.query(`CREATE TABLE docs (id int PRIMARY KEY, body text, counter int)`);
  // md5 hex barely compresses: 40 KB stays well above the 2 KB TOAST threshold, stored out of line.
  const big = `(SELECT string_agg(md5(i::text || random()::text), '') FROM generate_series(1, 1250) i)`;
  await db.query(`INSERT INTO docs VALUES (1, ${big}, 0)`);
  const body1 = (await db.query(`SELECT body FROM docs WHERE id = 1`)).rows[0].body as string;
  assert.ok(body1.length > 2048);
  const sink = new RecordingSink();
  const c = connector('docs', [{ table: 'docs', path: 'docs/{id}' }], sink);
  await c.start();
  assert.equal(sink.value('docs/1')!.body, body1);

  await db.query(`UPDATE docs SET counter = 1 WHERE id = 1`);
  await until('counter', () => sink.value('docs/1')?.counter === 1);
  const update = sink.calls.at(-1)!.updates[0];
  assert.deepEqual(update.keep, ['body'], 'Postgres did not resend the TOASTed body');
  assert.equal(Object.hasOwn(update.value!, 'body'), false);
  assert.equal(sink.value('docs/1')!.body, body1, 'the topic kept its body');

  // The same for a row that arrived through the stream.
  await db.query(`INSERT INTO docs VALUES (2, ${big}, 0)`);
  await until('insert', () => sink.value('docs/2'));
  const body2 = sink.value('docs/2')!.body;
  await db.query(`UPDATE docs SET counter = 5 WHERE id = 2`);
  await until('counter 2', () => sink.value('docs/2')?.counter === 5);
  assert.equal(sink.value('docs/2')!.body, body2);

  // Rewriting identical values reaches the sink but produces no change and no new version.
  const version = sink.store.get('docs/2')!.version;
  const calls = sink.calls.length;
  await db.query(`UPDATE docs SET counter = 5 WHERE id = 2`);
  await until('identical update applied', () => sink.calls.length > calls);
  assert.equal(sink.calls.at(-1)!.changes, 0);
  assert.equal(sink.store.get('docs/2')!.version, version);
  await c.stop();
});

test('ALTER TABLE mid-stream: added columns (also of a new domain type) and dropped columns follow', async () => {
  await db.query(`CREATE TABLE evolving (id int PRIMARY KEY, a text)`);
  const sink = new RecordingSink();
  const c = connector('evolving', [{ table: 'evolving', path: 'ev/{id}' }], sink);
  await c.start();
  await db.query(`INSERT INTO evolving VALUES (1, 'x')`);
  await until('first row', () => sink.value('ev/1'));
  await db.query(`CREATE DOMAIN tw_score AS int8; ALTER TABLE evolving ADD COLUMN note text, ADD COLUMN score tw_score`);
  await db.query(`INSERT INTO evolving VALUES (2, 'y', 'hello', 9007199254740993)`);
  await db.query(`UPDATE evolving SET note = 'later', score = 7 WHERE id = 1`);
  await until('new columns', () => sink.value('ev/1')?.note === 'later' && sink.value('ev/2'));
  assert.deepEqual(sink.value('ev/2'), { id: 2, a: 'y', note: 'hello', score: '9007199254740993' });
  assert.deepEqual(sink.value('ev/1'), { id: 1, a: 'x', note: 'later', score: 7 });
  await db.query(`ALTER TABLE evolving DROP COLUMN a; UPDATE evolving SET note = 'dropped' WHERE id = 2`);
  await until('dropped column', () => sink.value('ev/2')?.note === 'dropped');
  assert.deepEqual(sink.value('ev/2'), { id: 2, note: 'dropped', score: '9007199254740993' });
  await c.stop();
});

test('the slot advances while captured tables are idle and other tables are written', async () => {
  await db.query(`CREATE TABLE idle_captured (id int PRIMARY KEY); CREATE TABLE busy_other (id serial PRIMARY KEY, v text)`);
  const sink = new RecordingSink();
  const c = connector('idle', [{ table: 'idle_captured', path: 'idle/{id}' }], sink);
  await c.start();
  const confirmed = async () => (await db.query<{ lsn: string }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'idle'`)).rows[0].lsn;
  const start = await confirmed();
  for (let i = 0; i < 20; i++) await db.query(`INSERT INTO busy_other (v) SELECT md5(g::text) FROM generate_series(1, 100) g`);
  const written = (await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn;
  await until(
    `confirmed_flush_lsn to pass ${written} (was ${start})`,
    async () => (await db.query(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'idle'`, [written])).rows[0].ok,
  );
  assert.equal(sink.calls.length, 0, 'nothing reached the sink');
  await c.stop();
});

test('a large transaction is applied in chunks of 10,000, once, and acknowledged only after its commit', async () => {
  await db.query(`CREATE TABLE bulk (id int PRIMARY KEY, v int)`);
  const sink = new RecordingSink();
  const c = connector('bulk', [{ table: 'bulk', path: 'bulk/{id}' }], sink);
  await c.start();
  const t0 = Date.now();
  await db.query(`INSERT INTO bulk SELECT i, i FROM generate_series(1, 25000) i`);
  await until('bulk insert', () => sink.store.size === 25000, 30_000);
  const ms = Date.now() - t0;
  assert.deepEqual(sink.calls.map((call) => call.updates.length), [10000, 10000, 5000]);
  const commitLsn = (await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn;
  await until('acknowledged past the commit', async () => (await db.query(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'bulk'`, [commitLsn])).rows[0].ok);
  console.log(`[postgres] one 25,000-row transaction streamed and applied in ${ms} ms (${Math.round(25000 / (ms / 1000))} changes/s, includes the INSERT itself)`);

  // Many small transactions.
  const t1 = Date.now();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  for (let i = 0; i < 2000; i++) await client.query('UPDATE bulk SET v = v + 1 WHERE id = $1', [i + 1]);
  await client.end();
  await until('2000 updates', () => sink.value('bulk/2000')?.v === 2001, 30_000);
  console.log(`[postgres] 2,000 single-row transactions written and streamed in ${Date.now() - t1} ms`);
  await c.stop();
});

test('publication: created for exactly the configured tables, altered when it differs', async () => {
  await db.query(`CREATE TABLE pub_a (id int PRIMARY KEY); CREATE TABLE pub_b (id int PRIMARY KEY); CREATE TABLE pub_c (id int PRIMARY KEY)`);
  await db.query(`CREATE PUBLICATION pubtest FOR TABLE pub_a, pub_c WITH (publish = 'insert')`);
  const sink = new RecordingSink();
  const c = connector('pubtest', [{ table: 'pub_a', path: 'a/{id}' }, { table: 'public.pub_b', path: 'b/{id}' }], sink);
  await c.start();
  const tables = (await db.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = 'pubtest' ORDER BY 1`)).rows.map((r) => r.tablename);
  assert.deepEqual(tables, ['pub_a', 'pub_b']);
  const pub = (await db.query(`SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = 'pubtest'`)).rows[0];
  assert.deepEqual(pub, { pubinsert: true, pubupdate: true, pubdelete: true, pubtruncate: true });
  await db.query(`INSERT INTO pub_b VALUES (1); INSERT INTO pub_c VALUES (1); DELETE FROM pub_b`);
  await db.query(`INSERT INTO pub_a VALUES (1)`);
  await until('pub_a row', () => sink.value('a/1'));
  assert.deepEqual(sink.paths(), ['a/1'], 'the delete of pub_b arrived, pub_c is not published');
  await c.stop();
});

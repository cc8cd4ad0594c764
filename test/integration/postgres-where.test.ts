// Row filters and column lists at the source (issue 12, item 8) against a real Postgres 17: a
// mapping's where is the publication's row filter and the snapshot's WHERE, include/exclude the
// publication's column list; `tidewire check` reports what the server says of them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import type { IngestSink } from '../../core/ingest.ts';
import { PostgresConnector, PostgresConnectorError } from '../../connectors/postgres/index.ts';
import type { TableMapping } from '../../services/config/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import { CheckReport } from '../../services/cli/check-report.ts';
import { checkPostgres } from '../../services/cli/postgres-checks.ts';
import { startPostgres, type TestPostgres } from '../support/postgres.ts';

const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });

class RecordingSink implements IngestSink {
  readonly store = new TopicStore();
  readonly updates: TopicUpdate[] = [];
  async apply(updates: readonly TopicUpdate[]): Promise<void> {
    this.updates.push(...updates);
    this.store.apply(updates);
  }
  async removeSource(source: string): Promise<void> {
    this.store.removeSource(source);
  }
  paths(): string[] {
    return [...this.store.all()].map((t) => t.path).sort();
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
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

function connector(name: string, tables: TableMapping[], sink: IngestSink): PostgresConnector {
  const c = new PostgresConnector(
    { url: db.url, slot: name, publication: name, snapshotBatchRows: 2, statusIntervalMs: 100, tables },
    sink,
    { logger, reconnect: { initialMs: 50, maxMs: 500 } },
  );
  running.push(c);
  return c;
}

async function runCheck(tables: TableMapping[], publication: string): Promise<{ text: string; failed: number }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const report = new CheckReport(out);
  await checkPostgres({ url: db.url, slot: publication, publication, snapshotBatchRows: 1000, statusIntervalMs: 1000, tables }, report);
  return { text, failed: report.failed };
}

test('where: the snapshot reads only matching rows; rows entering and leaving the filter by UPDATE appear and disappear', async () => {
  await db.query(`CREATE TABLE tickets (id int PRIMARY KEY, status text NOT NULL, title text)`);
  await db.query(`ALTER TABLE tickets REPLICA IDENTITY FULL`);
  await db.query(`INSERT INTO tickets SELECT i, CASE WHEN i % 2 = 0 THEN 'open' ELSE 'closed' END, 't' || i FROM generate_series(1, 7) i`);
  const sink = new RecordingSink();
  const c = connector('where_rows', [{ table: 'tickets', path: 'tickets/{id}', where: `status = 'open'` }], sink);
  await c.start();
  assert.deepEqual(sink.paths(), ['tickets/2', 'tickets/4', 'tickets/6'], 'the snapshot honours the filter (read in batches of 2)');
  const { rows } = await db.query<{ rowfilter: string }>(`SELECT rowfilter FROM pg_publication_tables WHERE pubname = 'where_rows'`);
  assert.match(rows[0].rowfilter, /status = 'open'/);

  await db.query(`UPDATE tickets SET status = 'open' WHERE id = 3`); // enters
  await until('ticket 3 to appear', () => sink.store.get('tickets/3') !== undefined);
  assert.deepEqual(sink.store.get('tickets/3')?.value, { id: 3, status: 'open', title: 't3' });
  await db.query(`UPDATE tickets SET status = 'closed' WHERE id = 4`); // leaves
  await until('ticket 4 to disappear', () => sink.store.get('tickets/4') === undefined);
  await db.query(`UPDATE tickets SET title = 'renamed' WHERE id = 2`); // stays in
  await until('ticket 2 to change', () => sink.store.get('tickets/2')?.value.title === 'renamed');
  await db.query(`INSERT INTO tickets VALUES (8, 'closed', 'outside'), (10, 'open', 'inside')`);
  await db.query(`UPDATE tickets SET title = 'still outside' WHERE id = 1`);
  await db.query(`DELETE FROM tickets WHERE id = 5`);
  await until('ticket 10 to appear', () => sink.store.get('tickets/10') !== undefined);
  assert.deepEqual(sink.paths(), ['tickets/10', 'tickets/2', 'tickets/3', 'tickets/6']);
  assert.ok(!sink.updates.some((u) => /tickets\/(1|5|7|8)$/.test(u.path)), 'rows outside the filter never reach the sink');
  await c.stop();

  // Another where at the next start: the publication's row filter follows it (compared as the server deparses it).
  const again = new RecordingSink();
  const c2 = connector('where_rows', [{ table: 'tickets', path: 'tickets/{id}', where: `status = 'closed'` }], again);
  await c2.start();
  assert.deepEqual(again.paths(), ['tickets/1', 'tickets/4', 'tickets/7', 'tickets/8']);
  const altered = await db.query<{ rowfilter: string }>(`SELECT rowfilter FROM pg_publication_tables WHERE pubname = 'where_rows'`);
  assert.match(altered.rows[0].rowfilter, /status = 'closed'/);
  await db.query(`UPDATE tickets SET status = 'closed' WHERE id = 10`);
  await until('ticket 10 to appear in the new filter', () => again.store.get('tickets/10') !== undefined);
  await c2.stop();
});

test('where on a column outside the replica identity is refused before it could break UPDATEs; two different filters on one table are refused', async () => {
  await db.query(`CREATE TABLE jobs (id int PRIMARY KEY, state text)`);
  const c = connector('where_identity', [{ table: 'jobs', path: 'jobs/{id}', where: `state = 'run'` }], new RecordingSink());
  await assert.rejects(c.start(), (err: unknown) => {
    assert.ok(err instanceof PostgresConnectorError && err.code === 'PG_ROW_FILTER', String(err));
    assert.match(err.message, /postgres\.tables\.0\.where: .*reads state, which the replica identity of public\.jobs \(id\) does not cover.*REPLICA IDENTITY FULL/);
    return true;
  });
  const { rows } = await db.query(`SELECT 1 FROM pg_publication WHERE pubname = 'where_identity'`);
  assert.equal(rows.length, 0, 'no publication was created');
  await db.query(`UPDATE jobs SET state = 'x'`); // the application's writes still work

  const two = connector('where_two', [
    { table: 'jobs', path: 'a/{id}', where: 'id > 1' },
    { table: 'jobs', path: 'b/{id}', where: 'id > 2' },
  ], new RecordingSink());
  await assert.rejects(two.start(), (err: unknown) => err instanceof ConfigError && /postgres\.tables\.1\.where/.test(err.message) && /same where/.test(err.message));
});

test('tidewire check: an invalid where fails with the server\'s message; a valid one passes; the server says what it supports', async () => {
  await db.query(`CREATE TABLE shipments (id int PRIMARY KEY, region text)`);
  await db.query(`CREATE FUNCTION my_region(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 = 'eu' $$`);
  const bad = await runCheck([{ table: 'shipments', path: 's/{id}', where: `regoin = 'eu'` }], 'where_check');
  assert.equal(bad.failed, 1, bad.text);
  assert.match(bad.text, /where of postgres\.tables\.0.*column "regoin" does not exist/);
  assert.match(bad.text, /row filters, column lists.*supported \(Postgres 15\+\)/);
  const udf = await runCheck([{ table: 'shipments', path: 's/{id}', where: `my_region(region)` }], 'where_check');
  assert.match(udf.text, /where of postgres\.tables\.0.*refuses.*as a publication row filter.*User-defined/i);
  const injected = await runCheck([{ table: 'shipments', path: 's/{id}', where: `true); DROP TABLE shipments; SELECT (1` }], 'where_check');
  assert.equal(injected.failed, 1, injected.text);
  await db.query('SELECT 1 FROM shipments'); // still there
  const good = await runCheck([{ table: 'shipments', path: 's/{id}', where: 'id > 10', exclude: ['region'] }], 'where_check');
  assert.equal(good.failed, 0, good.text);
  assert.match(good.text, /where of postgres\.tables\.0.*\(id > 10\) reads id, covered by the replica identity/);
  assert.match(good.text, /column lists public\.shipments \(id\)/);
  const { rows } = await db.query(`SELECT 1 FROM pg_publication WHERE pubname IN ('where_check', 'tidewire_where_check')`);
  assert.equal(rows.length, 0, 'check leaves no publication behind');
});

test('exclude becomes the publication column list: excluded columns are absent from pg_publication_tables.attnames and from the WAL stream', async () => {
  await db.query(`CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int, secret text)`);
  const sink = new RecordingSink();
  const c = connector('where_columns', [{ table: 'accounts', path: 'accounts/{id}', exclude: ['secret', 'id'] }], sink);
  await c.start();
  const { rows } = await db.query<{ attnames: string[] }>(`SELECT attnames::text[] AS attnames FROM pg_publication_tables WHERE pubname = 'where_columns'`);
  assert.deepEqual(rows[0].attnames, ['id', 'owner', 'balance'], 'the path column id stays in the list though excluded from the value');
  await db.query(`SELECT pg_create_logical_replication_slot('where_columns_peek', 'pgoutput')`);
  await db.query(`INSERT INTO accounts VALUES (1, 'ann-owner', 10, 'hunter2-secret')`);
  await db.query(`UPDATE accounts SET balance = 11, secret = 'hunter3-secret' WHERE id = 1`);
  await until('account 1', () => sink.store.get('accounts/1')?.value.balance === 11);
  assert.deepEqual(sink.store.get('accounts/1')?.value, { owner: 'ann-owner', balance: 11 });
  const wal = await db.query<{ data: Buffer }>(
    `SELECT data FROM pg_logical_slot_peek_binary_changes('where_columns_peek', NULL, NULL, 'proto_version', '1', 'publication_names', 'where_columns')`,
  );
  const stream = Buffer.concat(wal.rows.map((r) => r.data)).toString('latin1');
  assert.ok(stream.includes('ann-owner'), 'the peek saw the changes');
  assert.ok(!stream.includes('secret'), 'neither the excluded column nor its values leave the database');
  await db.query(`SELECT pg_drop_replication_slot('where_columns_peek')`);
  await c.stop();
});

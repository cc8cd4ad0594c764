// The replication connection against a real Postgres 17: the ingest queue is bounded in wire
// bytes (reading pauses while the sink is slow, and nothing is lost or acknowledged early), and a
// mixed-case publication name reaches START_REPLICATION with its case.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { IngestSink } from '../../connectors/source.ts';
import { PostgresConnector, parseLsn } from '../../connectors/postgres/index.ts';
import { ConfigError } from '../../core/errors.ts';
import type { PostgresConfig } from '../../services/config/config.ts';
import { TopicStore, type TopicUpdate } from '../../services/topics/topic-store.ts';
import { startPostgres, type TestPostgres } from '../support/postgres.ts';

const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });

/** Applies into a TopicStore; while `gate` is set, apply() waits for it (a slow sink). */
class GatedSink implements IngestSink {
  readonly store = new TopicStore();
  gate: Promise<void> | null = null;
  applied = 0;
  calls = 0;
  async apply(updates: readonly TopicUpdate[]): Promise<void> {
    this.calls++;
    if (this.gate) await this.gate;
    this.store.apply(updates);
    this.applied += updates.length;
  }
  async removeSource(source: string): Promise<void> {
    this.store.removeSource(source);
  }
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
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

function connector(extra: Partial<PostgresConfig> & Pick<PostgresConfig, 'slot' | 'publication' | 'tables'>, sink: IngestSink): PostgresConnector {
  const c = new PostgresConnector({ url: db.url, snapshotBatchRows: 1000, statusIntervalMs: 100, ...extra }, sink, { logger, reconnect: { initialMs: 50, maxMs: 500 } });
  running.push(c);
  return c;
}

const confirmedFlush = async (slot: string) =>
  parseLsn((await db.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].lsn);

test('the ingest queue is bounded in wire bytes: reads pause while the sink is slow, then everything is applied once', async (t) => {
  await db.query('CREATE TABLE bp_rows (id int PRIMARY KEY, body text)');
  const sink = new GatedSink();
  const limit = 64 * 1024;
  const c = connector({ slot: 'bp', publication: 'bp', ingestQueueBytes: limit, tables: [{ table: 'bp_rows', path: 'bp/{id}' }] }, sink);
  await c.start();
  const ackedBefore = await confirmedFlush('bp');

  let release!: () => void;
  sink.gate = new Promise((r) => (release = r));
  // Whatever fails below, the sink must not stay blocked: stop() waits for the message being applied.
  t.after(() => {
    sink.gate = null;
    release();
  });
  // The first transaction's apply() blocks; 3 MiB of later rows (1 KiB each) arrive meanwhile.
  const callsBefore = sink.calls;
  await db.query(`INSERT INTO bp_rows VALUES (0, 'first')`);
  await until('the first transaction waiting in the sink', () => sink.calls > callsBefore);
  const rows = 3000;
  await db.query(`INSERT INTO bp_rows SELECT g, repeat('x', 1024) FROM generate_series(1, ${rows}) g`);
  await until('the queue to fill up', () => c.health().queuedBytes > limit);
  // Reading stays paused: the queue holds the bound plus at most the message that crossed it.
  for (let i = 0; i < 20; i++) {
    const h = c.health();
    assert.ok(h.queuedBytes <= limit + 2048, `queued ${h.queuedBytes} bytes, bound ${limit}`);
    assert.ok(h.queuedMessages < rows / 10, `queued ${h.queuedMessages} messages`);
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(await confirmedFlush('bp'), ackedBefore, 'nothing acknowledged while the sink has not applied it');

  sink.gate = null;
  release();
  await until('every row applied', () => sink.store.size === rows + 1 && sink.applied === rows + 1);
  assert.equal(sink.store.get('bp/3000')?.value.body, 'x'.repeat(1024));
  await until('the position acknowledged', async () => (await confirmedFlush('bp')) > ackedBefore);
  assert.equal(c.health().queuedBytes, 0);
});

test('postgres.ingestQueueBytes is validated', () => {
  for (const bad of [0, 1000, 2 ** 31, 1.5]) {
    assert.throws(
      () => connector({ slot: 'bpv', publication: 'bpv', ingestQueueBytes: bad, tables: [{ table: 'bp_rows', path: 'bp/{id}' }] }, new GatedSink()),
      (err: unknown) => err instanceof ConfigError && err.key === 'postgres.ingestQueueBytes' && /from 65536/.test(err.message),
      String(bad),
    );
  }
});

test('a mixed-case publication name streams (publication_names is sent quoted)', async () => {
  await db.query('CREATE TABLE mc_rows (id int PRIMARY KEY, v text)');
  const sink = new GatedSink();
  const c = connector({ slot: 'mc', publication: 'TideMixed', tables: [{ table: 'mc_rows', path: 'mc/{id}' }] }, sink);
  await c.start();
  await db.query(`INSERT INTO mc_rows VALUES (1, 'a')`);
  await until('the row streamed', () => sink.store.get('mc/1')?.value.v === 'a');
  assert.equal(c.health().state, 'streaming');
});

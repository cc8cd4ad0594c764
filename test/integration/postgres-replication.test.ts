// The replication connection against a real Postgres 17: the ingest queue is bounded in wire
// bytes (reading pauses while the sink is slow, and nothing is lost or acknowledged early), a
// mixed-case publication name reaches START_REPLICATION with its case, and a connection that goes
// silent (a frozen TCP proxy) is dropped through our own socket and replaced.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import type { IngestSink } from '../../core/ingest.ts';
import { PostgresConnector, clientConfig, closeClient, openClient, parseLsn } from '../../connectors/postgres/index.ts';
import { runPreflight } from '../../connectors/postgres/preflight.ts';
import { StreamSource } from '../../connectors/postgres/stream-source.ts';
import { TableMapper } from '../../connectors/postgres/table-mapper.ts';
import { TransactionApplier } from '../../connectors/postgres/transaction-applier.ts';
import { TypeRegistry } from '../../connectors/postgres/type-registry.ts';
import { ConfigError } from '../../core/errors.ts';
import type { PostgresConfig } from '../../services/config/config.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';
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

/** A TCP proxy in front of Postgres whose open connections can be frozen: nothing passes, nothing closes. */
async function frozenProxy(target: URL): Promise<{ url: string; freeze(): void; close(): void }> {
  const pairs: Array<[net.Socket, net.Socket]> = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => (client.destroy(), upstream.destroy());
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.href,
    freeze: () => {
      for (const [c, u] of pairs.splice(0)) {
        c.unpipe(u);
        u.unpipe(c);
        c.pause();
        u.pause();
      }
    },
    close: () => {
      server.close();
      for (const [c, u] of pairs) c.destroy(), u.destroy();
    },
  };
}

test('a replication connection that goes silent is dropped after the liveness timeout and replaced; streaming resumes', async (t) => {
  await db.query('CREATE TABLE lv_rows (id int PRIMARY KEY, v text)');
  await db.query('CREATE PUBLICATION lv FOR TABLE lv_rows');
  await db.query(`SELECT pg_create_logical_replication_slot('lv', 'pgoutput')`);
  const proxy = await frozenProxy(new URL(db.url));
  t.after(() => proxy.close());
  const target = 'proxy';
  const meta = await openClient(clientConfig(db.url, 'query'), target, logger);
  t.after(() => closeClient(meta));
  const preflight = await runPreflight(meta, [{ table: 'lv_rows', path: 'lv/{id}' }]);
  const types = new TypeRegistry();
  await types.resolve(meta, preflight.tables.flatMap((s) => s.table.columns.map((c) => c.typeOid)));
  const sink = new GatedSink();
  const applier = new TransactionApplier({
    sink,
    mappers: preflight.tables.map((spec) => new TableMapper(spec, types, logger)),
    types,
    resolveTypes: (oids) => types.resolve(meta, oids),
    log: logger,
    startLsn: await confirmedFlush('lv'),
  });
  const events: string[] = [];
  const stream = new StreamSource({
    connection: clientConfig(proxy.url, 'replication'),
    slot: 'lv',
    publication: 'lv',
    statusIntervalMs: 100,
    reconnect: { initialMs: 10, maxMs: 50 },
    liveness: { pingAfterMs: 200, timeoutMs: 600 },
    applier,
    log: logger,
    target,
    onStreaming: () => events.push('streaming'),
    onDegraded: (detail) => events.push(`degraded: ${detail}`),
    onFailed: (err) => events.push(`failed: ${err.message}`),
  });
  await stream.start();
  t.after(() => stream.stop());
  await db.query(`INSERT INTO lv_rows VALUES (1, 'before')`);
  await until('the first row', () => sink.store.get('lv/1')?.value.v === 'before');

  // The old walsender still holds the slot until it times out on its side (60 s by default).
  await db.query(`ALTER SYSTEM SET wal_sender_timeout = '1s'`);
  await db.query('SELECT pg_reload_conf()');
  t.after(async () => {
    await db.query('ALTER SYSTEM RESET wal_sender_timeout');
    await db.query('SELECT pg_reload_conf()');
  });
  proxy.freeze();
  await db.query(`INSERT INTO lv_rows VALUES (2, 'while frozen')`);
  const frozenAt = Date.now();
  await until('the silent connection replaced', () => stream.reconnects >= 1 && events.filter((e) => e === 'streaming').length >= 2, 10_000);
  assert.ok(Date.now() - frozenAt >= 500, 'not before the liveness timeout');
  assert.match(events[1], /^degraded: replication connection lost/);
  await until('the row sent while frozen, through the new connection', () => sink.store.get('lv/2')?.value.v === 'while frozen');
  await db.query(`INSERT INTO lv_rows VALUES (3, 'after')`);
  await until('a row after the reconnect', () => sink.store.get('lv/3')?.value.v === 'after');
  assert.equal(sink.applied, 3, 'each row applied once');
});

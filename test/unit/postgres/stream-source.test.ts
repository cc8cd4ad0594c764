/**
 * The replication stream's own behaviour: its queue is bounded in wire bytes (reads pause past
 * `queueBytes` and resume only once it drained below a quarter), messages reach the applier in
 * stream order, and only applied positions are acknowledged. StreamSource opens its replication
 * connection itself (no seam for a fake one), so this runs against a real Postgres; the sink is
 * the fake port, the applier and everything below it are real.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { IngestSink } from '../../../core/ingest.ts';
import type { TopicUpdate } from '../../../core/topic.ts';
import type { TableInfo } from '../../../connectors/postgres/catalog.ts';
import { clientConfig } from '../../../connectors/postgres/connection.ts';
import type { PostgresConnectorError } from '../../../connectors/postgres/errors.ts';
import { type Lsn, parseLsn } from '../../../connectors/postgres/lsn.ts';
import { checkTable } from '../../../connectors/postgres/preflight.ts';
import { StreamSource } from '../../../connectors/postgres/stream-source.ts';
import { TableMapper } from '../../../connectors/postgres/table-mapper.ts';
import { TransactionApplier } from '../../../connectors/postgres/transaction-applier.ts';
import { TypeRegistry } from '../../../connectors/postgres/type-registry.ts';
import { type TestPostgres, startPostgres } from '../../support/postgres.ts';

/** Records what reaches it; while `gate` is set, apply() waits for it (a slow sink). */
class GatedSink implements IngestSink {
  readonly applied: TopicUpdate[] = [];
  /** apply() calls started, with their updates. */
  readonly started: TopicUpdate[][] = [];
  gate: Promise<void> | null = null;
  async apply(updates: readonly TopicUpdate[]): Promise<void> {
    this.started.push([...updates]);
    if (this.gate) await this.gate;
    this.applied.push(...updates);
  }
  async removeSource(): Promise<void> {}
}

interface LogRecord {
  msg: string;
  queuedBytes?: number;
  lsn?: string;
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: TestPostgres;
const sources: StreamSource[] = [];
const gates: Array<() => void> = [];

before(async () => {
  db = await startPostgres();
});

after(async () => {
  for (const open of gates) open();
  for (const s of sources) await s.stop().catch(() => {});
  await db?.stop();
});

const walInsertLsn = async (): Promise<Lsn> => parseLsn((await db.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn);
const confirmedFlush = async (slot: string): Promise<Lsn> =>
  parseLsn((await db.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].lsn);

/** A table `name` (id int, body text), its publication and slot, and a StreamSource over them (not started). */
async function stream(name: string, queueBytes?: number) {
  await db.query(`CREATE TABLE ${name} (id int PRIMARY KEY, body text)`);
  await db.query(`CREATE PUBLICATION ${name} FOR TABLE ${name}`);
  const slot = await db.query<{ lsn: string }>(`SELECT lsn::text FROM pg_create_logical_replication_slot('${name}', 'pgoutput')`);
  const startLsn = parseLsn(slot.rows[0].lsn);
  const info: TableInfo = {
    schema: 'public',
    name,
    oid: 0,
    relkind: 'r',
    replicaIdentity: 'default',
    columns: [{ name: 'id', typeOid: 23, generated: false }, { name: 'body', typeOid: 25, generated: false }],
    primaryKey: ['id'],
    identityIndex: null,
    rowEstimate: 0,
    canSelect: true,
  };
  const records: LogRecord[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  const types = new TypeRegistry();
  const spec = checkTable({ table: name, path: `${name}/{id}` }, 0, info, { database: 'db', role: 'r' });
  const sink = new GatedSink();
  const applier = new TransactionApplier({ sink, mappers: [new TableMapper(spec, types, log)], types, resolveTypes: async () => {}, log, startLsn });
  const failures: PostgresConnectorError[] = [];
  const source = new StreamSource({
    connection: clientConfig(db.url, 'replication'),
    slot: name,
    publication: name,
    statusIntervalMs: 50,
    reconnect: { initialMs: 50, maxMs: 500 },
    queueBytes,
    applier,
    log,
    target: 'test',
    onStreaming: () => {},
    onDegraded: (_detail, err) => failures.push(err),
    onFailed: (err) => failures.push(err),
  });
  sources.push(source);
  /** Blocks the sink until the returned function is called. */
  const block = (): (() => void) => {
    let open!: () => void;
    sink.gate = new Promise<void>((r) => (open = r));
    const release = () => {
      sink.gate = null;
      open();
    };
    gates.push(release);
    return release;
  };
  const acked = () => records.filter((r) => r.msg === 'acknowledged').map((r) => parseLsn(r.lsn!));
  return { source, sink, applier, records, failures, startLsn, block, acked, ids: () => sink.applied.map((u) => Number(u.value?.id)) };
}

describe('StreamSource against a real Postgres', () => {
  it('pauses reads past queueBytes and resumes only below a quarter of it; every message is applied once, in order', async () => {
    const limit = 64 * 1024;
    const s = await stream('ss_flow', limit);
    await s.source.start();
    const release = s.block();
    await db.query(`INSERT INTO ss_flow VALUES (0, 'first')`);
    await until('the first transaction waiting in the sink', () => s.sink.started.length > 0);
    // 200 transactions of 15 rows of 1 KiB: about 3 MiB, 48 times the bound.
    await db.query(`DO $$ BEGIN FOR t IN 0..199 LOOP INSERT INTO ss_flow SELECT 1 + t * 15 + g, repeat('x', 1024) FROM generate_series(0, 14) g; COMMIT; END LOOP; END $$`);
    await until('the queue to pass its bound', () => s.source.queuedBytes > limit);
    let most = 0;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, s.source.queuedBytes);
      await sleep(20);
    }
    assert.ok(most <= limit + 2048, `queued ${most} bytes, bound ${limit}: paused past the bound, plus at most the message that crossed it`);
    assert.ok(s.source.queued < 3000 / 10, `${s.source.queued} messages queued`);
    const paused = s.records.filter((r) => r.msg.startsWith('sink slower than the stream'));
    assert.equal(paused.length, 1, 'paused once while the sink is blocked');
    assert.ok(paused[0].queuedBytes! > limit);
    assert.equal(s.records.filter((r) => r.msg === 'resuming reads from Postgres').length, 0, 'not resumed while nothing drains');

    release();
    await until('every row applied', () => s.sink.applied.length === 3001);
    assert.deepEqual(s.ids(), Array.from({ length: 3001 }, (_, i) => i), 'every row once, in commit order');
    const resumed = s.records.filter((r) => r.msg === 'resuming reads from Postgres');
    const pauses = s.records.filter((r) => r.msg.startsWith('sink slower than the stream'));
    assert.ok(resumed.length >= 1);
    assert.equal(resumed.length, pauses.length, 'each pause ended by one resume');
    for (const r of resumed) assert.ok(r.queuedBytes! < limit / 4, `resumed at ${r.queuedBytes} bytes: below the low-water mark ${limit / 4}`);
    for (const p of pauses) assert.ok(p.queuedBytes! > limit, `paused at ${p.queuedBytes} bytes`);
    assert.equal(s.source.queuedBytes, 0);
    assert.deepEqual(s.failures, []);
  });

  it('acknowledges only what the sink applied: a transaction held in the sink is not acknowledged, the one before it is', async () => {
    const s = await stream('ss_ack');
    await s.source.start();
    const beforeFirst = await walInsertLsn();
    await db.query(`INSERT INTO ss_ack VALUES (1, 'a')`);
    await until('the first transaction applied', () => s.sink.applied.length === 1);
    await until('its commit acknowledged', () => s.source.lastAckedLsn > beforeFirst);
    await until('and seen by the server', async () => (await confirmedFlush('ss_ack')) > beforeFirst);

    const release = s.block();
    const beforeSecond = await walInsertLsn();
    await db.query(`INSERT INTO ss_ack VALUES (2, 'b')`);
    await until('the second transaction waiting in the sink', () => s.sink.started.length === 2);
    await sleep(300); // six status intervals, and keepalives, while the sink holds it
    assert.ok(s.source.lastAckedLsn <= beforeSecond, `acknowledged ${s.source.lastAckedLsn}, the held transaction starts after ${beforeSecond}`);
    for (const lsn of s.acked()) assert.ok(lsn <= beforeSecond, `acknowledged ${lsn} while the transaction after ${beforeSecond} was not applied`);
    assert.ok((await confirmedFlush('ss_ack')) <= beforeSecond, 'the server was told nothing past the applied transaction');
    assert.equal(s.source.lastAckedLsn, s.acked().at(-1), 'lastAckedLsn is the last position reported');

    release();
    await until('the second transaction applied', () => s.sink.applied.length === 2);
    await until('its commit acknowledged', () => s.source.lastAckedLsn > beforeSecond);
    assert.ok(s.source.lastAckedLsn <= s.applier.durableLsn, 'never past what the applier made durable');
    await until('and seen by the server', async () => (await confirmedFlush('ss_ack')) > beforeSecond);
    assert.deepEqual(s.ids(), [1, 2]);
  });

  it('stop() waits for the message being applied and reports the final position', async () => {
    const s = await stream('ss_stop');
    await s.source.start();
    const release = s.block();
    const beforeFirst = await walInsertLsn();
    await db.query(`INSERT INTO ss_stop VALUES (1, 'a')`);
    await until('the transaction waiting in the sink', () => s.sink.started.length === 1);
    let stopped = false;
    const stopping = s.source.stop().then(() => (stopped = true));
    await sleep(100);
    assert.equal(stopped, false, 'stop() waits while the sink applies');
    release();
    await stopping;
    assert.deepEqual(s.ids(), [1]);
    assert.ok(s.source.lastAckedLsn > beforeFirst, 'the applied commit was reported on the way out');
    assert.equal(s.source.lastAckedLsn, s.applier.durableLsn);
    assert.equal(await confirmedFlush('ss_stop'), s.source.lastAckedLsn, 'and reached the server');
  });

  it('queueBytes must be a positive integer', async () => {
    const s = await stream('ss_bad');
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => new StreamSource({
          connection: {}, slot: 'x', publication: 'x', statusIntervalMs: 50, reconnect: { initialMs: 1, maxMs: 1 },
          queueBytes: bad, applier: s.applier, log: pino({ level: 'silent' }), target: 't', onStreaming() {}, onDegraded() {}, onFailed() {},
        }),
        /queueBytes must be a positive integer/,
        String(bad),
      );
    }
  });
});

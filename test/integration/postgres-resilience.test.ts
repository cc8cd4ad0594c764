// The Postgres connector when things move underneath it: writes racing the snapshot-to-stream
// hand-off, a Postgres restart mid-stream, a dropped replication connection, a slot held by
// another process, and a previous tidewire killed with kill -9.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import pino from 'pino';
import type { IngestSink } from '../../core/ingest.ts';
import { PostgresConnector, PostgresConnectorError } from '../../connectors/postgres/index.ts';
import type { PostgresConfig } from '../../services/config/config.ts';
import type { JsonObject } from '../../core/json.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';
import { startPostgres, type TestPostgres } from '../support/postgres.ts';

const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });
const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Applies into a real TopicStore and checks, as it goes, that no change is applied twice or out
 * of order: every row carries `rev`, a value from one sequence taken at each write, so the revs
 * a topic sees must strictly increase (across removals too: ids are never reused).
 */
class CheckingSink implements IngestSink {
  readonly store = new TopicStore();
  readonly violations: string[] = [];
  applyCalls = 0;
  /** Non-null updates received. */
  upserts = 0;
  /** When set, the next apply() announces itself and waits for `released`. */
  gate: { entered: () => void; released: Promise<void> } | null = null;
  private readonly lastRev = new Map<string, number>();
  private readonly lastVersion = new Map<string, number>();

  async apply(updates: readonly TopicUpdate[]): Promise<void> {
    this.applyCalls++;
    const gate = this.gate;
    if (gate) {
      this.gate = null;
      gate.entered();
      await gate.released;
    }
    for (const u of updates) {
      if (u.value === null) continue;
      this.upserts++;
      const rev = u.value.rev as number;
      const prev = this.lastRev.get(u.path) ?? 0;
      if (!(rev > prev)) this.violations.push(`${u.path}: rev ${rev} applied after rev ${prev}`);
      this.lastRev.set(u.path, rev);
    }
    this.observe(this.store.apply(updates));
  }

  async removeSource(source: string): Promise<void> {
    this.observe(this.store.removeSource(source));
  }

  private observe(batch: ReturnType<TopicStore['apply']>): void {
    for (const c of batch?.changes ?? []) {
      const prev = this.lastVersion.get(c.topic.path) ?? 0;
      if (c.type !== 'value' || c.version !== 1) {
        if (c.version !== prev + 1) this.violations.push(`${c.topic.path}: version ${c.version} after ${prev}`);
      }
      if (c.type === 'removal') this.lastVersion.delete(c.topic.path);
      else this.lastVersion.set(c.topic.path, c.version);
    }
  }

  snapshot(): Map<string, JsonObject> {
    return new Map([...this.store.all()].map((t) => [t.path, t.value]));
  }
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
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
const children: ChildProcess[] = [];

before(async () => {
  db = await startPostgres();
});

after(async () => {
  for (const c of running) await c.stop().catch(() => {});
  for (const child of children) child.kill('SIGKILL');
  await db?.stop();
});

function config(name: string, table: string, extra: Partial<PostgresConfig> = {}): PostgresConfig {
  return { url: db.url, slot: name, publication: name, snapshotBatchRows: 100, statusIntervalMs: 100, tables: [{ table, path: `${table}/{id}` }], ...extra };
}

function connector(cfg: PostgresConfig, sink: IngestSink, slotBusyTimeoutMs?: number): PostgresConnector {
  const c = new PostgresConnector(cfg, sink, { logger, reconnect: { initialMs: 50, maxMs: 500 }, slotBusyTimeoutMs });
  running.push(c);
  return c;
}

async function createTable(table: string, rows: number): Promise<void> {
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, rev bigint NOT NULL, v text); CREATE SEQUENCE ${table}_rev`);
  await db.query(`INSERT INTO ${table} SELECT i, nextval('${table}_rev'), md5(i::text) FROM generate_series(1, ${rows}) i`);
}

async function tableContents(table: string): Promise<Map<string, JsonObject>> {
  const { rows } = await db.query(`SELECT id, rev::int AS rev, v FROM ${table}`);
  return new Map(rows.map((r) => [`${table}/${r.id}`, { id: r.id, rev: r.rev, v: r.v }]));
}

/** Waits until the topic store holds exactly the table. */
async function assertCaughtUp(sink: CheckingSink, table: string, ms = 20_000): Promise<void> {
  const expected = await tableContents(table);
  const diff = () => {
    const got = sink.snapshot();
    const problems: string[] = [];
    for (const [path, value] of expected) {
      const have = got.get(path);
      if (!have) problems.push(`missing ${path}`);
      else if (JSON.stringify(have) !== JSON.stringify(value)) problems.push(`${path}: ${JSON.stringify(have)} ≠ ${JSON.stringify(value)}`);
    }
    for (const path of got.keys()) if (!expected.has(path)) problems.push(`extra ${path}`);
    return problems;
  };
  try {
    await until(`the topic store to equal ${table}`, () => diff().length === 0, ms);
  } catch (err) {
    const problems = diff();
    throw new Error(`${(err as Error).message}: ${problems.length} differences, e.g. ${problems.slice(0, 5).join('; ')}`);
  }
  assert.deepEqual(sink.violations, [], 'no change applied twice or out of order');
}

/**
 * Writes in a loop until stopped: inserts of fresh ids, updates, deletes, key changes, and
 * multi-statement transactions. Errors (e.g. during a restart) are counted, not fatal.
 */
function startWriter(table: string, firstFreeId: number, concurrency = 3) {
  const pool = new pg.Pool({ connectionString: db.url, max: concurrency });
  pool.on('error', () => {});
  let nextId = firstFreeId;
  let stopped = false;
  const stats = { ops: 0, errors: 0 };
  const rev = `nextval('${table}_rev')`;
  const randomId = () => 1 + Math.floor(Math.random() * (nextId - 1));
  const one = async (client: pg.PoolClient) => {
    const r = Math.random();
    if (r < 0.35) await client.query(`INSERT INTO ${table} VALUES ($1, ${rev}, md5(random()::text))`, [nextId++]);
    else if (r < 0.7) await client.query(`UPDATE ${table} SET rev = ${rev}, v = md5(random()::text) WHERE id = $1`, [randomId()]);
    else if (r < 0.8) await client.query(`DELETE FROM ${table} WHERE id = $1`, [randomId()]);
    else if (r < 0.85) await client.query(`UPDATE ${table} SET id = $2, rev = ${rev} WHERE id = $1`, [randomId(), nextId++]);
    else {
      await client.query('BEGIN');
      try {
        await client.query(`UPDATE ${table} SET rev = ${rev}, v = 'txn' WHERE id = $1`, [randomId()]);
        await client.query(`DELETE FROM ${table} WHERE id = $1`, [randomId()]);
        await client.query(`INSERT INTO ${table} VALUES ($1, ${rev}, 'txn')`, [nextId++]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
  };
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      try {
        const client = await pool.connect();
        client.on('error', () => {}); // a checked-out client reports a server restart here
        try {
          while (!stopped) {
            await one(client);
            stats.ops++;
          }
        } finally {
          client.release(true);
        }
      } catch {
        stats.errors++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  let ended: Promise<void> | null = null;
  return {
    stats,
    stop(): Promise<void> {
      stopped = true;
      ended ??= Promise.all(loops).then(() => pool.end());
      return ended;
    },
  };
}

test('snapshot-to-stream hand-off under concurrent writes: nothing lost, nothing applied twice', async () => {
  await createTable('handoff', 3000);
  const writer = startWriter('handoff', 3001);
  await until('the writer to get going', () => writer.stats.ops >= 200);
  const sink = new CheckingSink();
  const c = connector(config('handoff', 'handoff'), sink);
  const opsAtStart = writer.stats.ops;
  const t0 = Date.now();
  await c.start();
  const startMs = Date.now() - t0;
  const opsDuringStart = writer.stats.ops - opsAtStart;
  const streamingFrom = writer.stats.ops;
  await until('writes while streaming', () => writer.stats.ops >= streamingFrom + 1500, 30_000);
  await writer.stop();
  assert.ok(opsDuringStart > 0, 'writes raced the snapshot');
  await assertCaughtUp(sink, 'handoff');
  const snap = c.health().snapshot[0];
  console.log(
    `[postgres] hand-off: snapshot of ${snap.rows} rows in ${Math.ceil(snap.rows / 100)} batches took ${startMs} ms with ${opsDuringStart} concurrent writes; ${writer.stats.ops} writes in all, ${writer.stats.errors} errors`,
  );
  assert.equal(c.health().transactionsSkipped, 0);
  await c.stop();
});

test('Postgres restart mid-stream: degraded, reconnects, resumes with no loss and no duplicate', async () => {
  await createTable('restart', 500);
  const sink = new CheckingSink();
  // A long status interval leaves applied-but-unacknowledged transactions for Postgres to resend.
  const c = connector(config('restart', 'restart', { statusIntervalMs: 1000 }), sink);
  await c.start();
  const states = new Set<string>();
  const watch = setInterval(() => states.add(`${c.health().state}${c.health().state === 'degraded' ? `: ${c.health().detail}` : ''}`), 5);
  const writer = startWriter('restart', 501, 2);
  try {
    await until('writes before the restart', () => writer.stats.ops >= 300);
    await db.restart();
    const after = writer.stats.ops;
    await until('writes after the restart', () => writer.stats.ops >= after + 300, 30_000);
    await writer.stop();
    await assertCaughtUp(sink, 'restart');
  } finally {
    clearInterval(watch);
    await writer.stop();
  }
  const h = c.health();
  assert.equal(h.state, 'streaming');
  assert.ok(h.reconnects >= 1, 'reconnected');
  assert.ok([...states].some((s) => /^degraded: replication connection lost .*reconnect attempt 1/.test(s)), `saw degraded with a detail; saw ${[...states].join(' | ')}`);
  console.log(`[postgres] restart: ${writer.stats.ops} writes (${writer.stats.errors} failed during the restart), ${h.reconnects} reconnect(s), ${h.transactionsSkipped} resent transactions skipped`);
  await c.stop();
});

test('a replication connection dropped in the middle of a large transaction: the rest is applied once', async () => {
  await createTable('bigtx', 0);
  const sink = new CheckingSink();
  const c = connector(config('bigtx', 'bigtx'), sink);
  await c.start();
  // Hold the first 10,000-update chunk inside the sink while the walsender is killed.
  let entered!: () => void;
  let release!: () => void;
  const inSink = new Promise<void>((r) => (entered = r));
  sink.gate = { entered: () => entered(), released: new Promise<void>((r) => (release = r)) };
  await db.query(`INSERT INTO bigtx SELECT i, nextval('bigtx_rev'), 'x' FROM generate_series(1, 25000) i`);
  await inSink;
  const pid = (await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'bigtx'`)).rows[0].active_pid;
  await db.query('SELECT pg_terminate_backend($1)', [pid]);
  await until('the walsender to go', async () => (await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'bigtx'`)).rows[0].active_pid !== pid);
  release();
  await assertCaughtUp(sink, 'bigtx');
  // The rest may all have arrived before the kill and be applied from the old connection's
  // queue, while the reconnect still waits out its backoff: wait for the new stream, then
  // check that it did not apply anything of the transaction again.
  await until('streaming again', () => c.health().state === 'streaming');
  await db.query(`UPDATE bigtx SET rev = nextval('bigtx_rev') WHERE id = 1`);
  await assertCaughtUp(sink, 'bigtx');
  assert.equal(sink.upserts, 25001, 'every row applied exactly once, then the update');
  const h = c.health();
  assert.equal(h.reconnects, 1);
  assert.equal(h.transactionsApplied, 2);
  assert.equal(h.state, 'streaming');
  await c.stop();
});

test('the slot dropped while reconnecting: failed with PG_SLOT_LOST, not retried forever', async () => {
  await createTable('lost', 3);
  const sink = new CheckingSink();
  const c = new PostgresConnector(config('lost', 'lost'), sink, { logger, reconnect: { initialMs: 3000, maxMs: 3000 } });
  running.push(c);
  await c.start();
  const pid = (await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'lost'`)).rows[0].active_pid;
  await db.query('SELECT pg_terminate_backend($1)', [pid]);
  await until('the walsender to go', async () => (await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'lost'`)).rows[0].active_pid === null);
  await db.query(`SELECT pg_drop_replication_slot('lost')`);
  await until('failed', () => c.health().state === 'failed');
  assert.match(c.health().detail ?? '', /replication slot can no longer be used .*Restart tidewire/);
  await c.stop();
  assert.equal(c.health().state, 'stopped');
});

test('slot held by another process: PG_SLOT_IN_USE after the wait; a lingering holder that lets go is waited for', async () => {
  await createTable('busy', 5);
  const first = connector(config('busy', 'busy'), new CheckingSink());
  await first.start();
  await db.query(`CREATE TABLE busy_other (id int PRIMARY KEY)`);
  // Same slot, another table list: it must fail without touching the running one's publication.
  const second = connector({ ...config('busy', 'busy'), tables: [{ table: 'busy_other', path: 'o/{id}' }] }, new CheckingSink(), 1500);
  const t0 = Date.now();
  await assert.rejects(second.start(), (err: unknown) => {
    assert.ok(err instanceof PostgresConnectorError, String(err));
    assert.equal(err.code, 'PG_SLOT_IN_USE');
    assert.equal(err.retriable, true);
    assert.match(err.message, /slot "busy" is in use by process \d+: another tidewire/);
    return true;
  });
  assert.ok(Date.now() - t0 >= 1400, 'waited for the slot before giving up');
  assert.equal(first.health().state, 'streaming', 'the running connector is untouched');
  assert.deepEqual((await db.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = 'busy'`)).rows, [{ tablename: 'busy' }]);
  await first.stop();

  // A stand-in for the walsender of a killed tidewire: holds the slot for 1.5 s more.
  const holder = new pg.Client({ connectionString: db.url, replication: 'database' } as pg.ClientConfig);
  holder.on('error', () => {});
  await holder.connect();
  void holder.query(`START_REPLICATION SLOT "busy" LOGICAL 0/0 (proto_version '1', publication_names 'busy')`).catch(() => {});
  await until('holder active', async () => (await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'busy'`)).rows[0].active_pid !== null);
  const release = setTimeout(() => void holder.end().catch(() => {}), 1500);
  const third = connector(config('busy', 'busy'), new CheckingSink(), 10_000);
  const t1 = Date.now();
  await third.start();
  clearTimeout(release);
  assert.ok(Date.now() - t1 >= 1400, 'started once the holder let go');
  assert.equal(third.health().state, 'streaming');
  await third.stop();
});

test('stop() during the snapshot: start() rejects with PG_STOPPED and nothing streams afterwards', async () => {
  await createTable('early', 300);
  const sink = new CheckingSink();
  let entered!: () => void;
  let release!: () => void;
  const inSink = new Promise<void>((r) => (entered = r));
  sink.gate = { entered: () => entered(), released: new Promise<void>((r) => (release = r)) };
  const c = connector(config('early', 'early'), sink);
  const starting = c.start();
  await inSink;
  assert.equal(c.health().state, 'snapshotting');
  const stopping = c.stop();
  release();
  await stopping;
  await assert.rejects(starting, (err: unknown) => err instanceof PostgresConnectorError && err.code === 'PG_STOPPED');
  assert.equal(c.health().state, 'stopped');
  const { rows } = await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'early'`);
  assert.equal(rows[0]?.active_pid ?? null, null, 'no replication connection left behind');
});

const CHILD = `
  const { PostgresConnector } = await import(${JSON.stringify(`${root}connectors/postgres/index.ts`)});
  const pino = (await import('pino')).default;
  const sink = { apply: async () => {}, removeSource: async () => {} };
  const c = new PostgresConnector(JSON.parse(process.env.TW_CONFIG), sink, { logger: pino({ level: 'silent' }) });
  await c.start();
  process.stdout.write('STREAMING\\n');
  setInterval(() => {}, 60_000);
`;

test('after a kill -9 of a previous tidewire, a new connector on the same slot re-snapshots and streams', async () => {
  await createTable('crash', 1000);
  const cfg = config('crash', 'crash');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: root, env: { ...process.env, TW_CONFIG: JSON.stringify(cfg) }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await until('the first tidewire to stream', () => out.includes('STREAMING'), 30_000);
  const writer = startWriter('crash', 1001, 2);
  await until('writes', () => writer.stats.ops >= 200);
  const firstSlot = (await db.query(`SELECT active_pid, restart_lsn::text FROM pg_replication_slots WHERE slot_name = 'crash'`)).rows[0];
  assert.notEqual(firstSlot.active_pid, null);
  child.kill('SIGKILL');

  // Immediately, while the writer goes on: its walsender may still hold the slot for a moment.
  const sink = new CheckingSink();
  const c = connector(cfg, sink);
  await c.start();
  await until('more writes', () => writer.stats.ops >= 600);
  await writer.stop();
  await assertCaughtUp(sink, 'crash');
  const slot = (await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'crash'`)).rows[0];
  assert.notEqual(slot.active_pid, firstSlot.active_pid, 'the slot is held by the new connector');
  await c.stop();

  // And a clean stop followed by a new instance: the kept slot is replaced, the snapshot retaken.
  await db.query(`DELETE FROM crash WHERE id <= 100; UPDATE crash SET rev = nextval('crash_rev') WHERE id = 200`);
  const sink2 = new CheckingSink();
  const again = connector(cfg, sink2);
  await again.start();
  await assertCaughtUp(sink2, 'crash');
  await again.stop();
});

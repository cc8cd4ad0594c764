/**
 * Durable state across restarts (issue #12), with a real Postgres, a real `tidewire start`
 * process and the SDK: a kill -9 resumes in the same epoch without re-reading the table; a lost
 * slot re-reads it diffed (no blank, no spurious removal); a changed mapping re-reads only its
 * table; a Postgres restart during the snapshot is retried; a damaged or foreign store is refused
 * with an error naming state.dir. A transfer invariant (the sum of all balances) is checked after
 * every frame the client applies.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { TidewireClient, type Subscription } from '../../client/index.ts';
import { LmdbStateStore } from '../../services/state/index.ts';
import type { JsonObject } from '../../core/json.ts';
import { jsonEqual } from '../../core/json.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';
import { type WriterLoop, startWriterLoop } from '../support/writer-loop.ts';

const ACCOUNTS = 100;
const TOTAL = ACCOUNTS * 1000;

let db: TestPostgres;
let svc: ServiceProcess | undefined;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE accounts (id int PRIMARY KEY, branch int NOT NULL, balance int NOT NULL)');
  await db.query(`INSERT INTO accounts SELECT i, i % 5, 1000 FROM generate_series(1, ${ACCOUNTS}) i`);
  await db.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, secret text NOT NULL)');
  await db.query(`INSERT INTO notes SELECT i, 'note ' || i, 's' || i FROM generate_series(1, 20) i`);
});

after(async () => {
  await svc?.kill();
  await db?.stop();
});

function config(stateDir: string, slot: string, notes: Record<string, unknown> = {}): object {
  return {
    log: { level: 'info' },
    state: { dir: stateDir },
    postgres: {
      url: db.url,
      slot,
      publication: slot,
      tables: [
        { table: 'public.accounts', path: 'accounts/{branch}/{id}' },
        { table: 'public.notes', path: 'notes/{id}', ...notes },
      ],
    },
  };
}

/** Transfers between two random accounts, one transaction each, until stopped: the sum never changes. */
function startTransfers(url: string): WriterLoop {
  // Its updates find rows by index, so the table's seq_scan counts only whole-table reads (a snapshot).
  return startWriterLoop(
    url,
    async (client) => {
      const a = 1 + Math.floor(Math.random() * ACCOUNTS);
      const b = 1 + ((a + Math.floor(Math.random() * (ACCOUNTS - 1))) % ACCOUNTS);
      const x = 1 + Math.floor(Math.random() * 50);
      await client.query('BEGIN');
      await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [x, a]);
      await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [x, b]);
      await client.query('COMMIT');
    },
    { setup: 'SET enable_seqscan = off' },
  );
}

interface Watcher {
  client: TidewireClient;
  sub: Subscription;
  /** Frames after which the sum of balances was not TOTAL (once the subscription was live). */
  violations: string[];
  /** A value emitted equal to the one emitted before it for the same path. */
  duplicates: number;
  removals: string[];
  /** Frames after which the client held no account at all (once it had been live). */
  blanks: number;
  resumes: Array<{ resumed: string; epochChanged: boolean }>;
}

/** An SDK client on `accounts/**` checking the invariant after every frame it applies. */
function watchAccounts(port: number): Watcher {
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 400 } });
  const last = new Map<string, JsonObject>();
  let scheduled = false;
  let wasLive = false;
  const w: Watcher = { client, sub: undefined as never, violations: [], duplicates: 0, removals: [], blanks: 0, resumes: [] };
  // One frame is applied synchronously: a microtask after its first change sees all of it applied.
  const afterFrame = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      if (!w.sub.live) return;
      wasLive = true;
      let sum = 0;
      for (const v of w.sub.values.values()) sum += v.balance as number;
      if (w.sub.values.size === 0) w.blanks++;
      else if (sum !== TOTAL) w.violations.push(`sum ${sum} over ${w.sub.values.size} accounts`);
    });
  };
  w.sub = client.subscribe('accounts/**', {
    onValue: (path, value) => {
      const prev = last.get(path);
      if (prev !== undefined && jsonEqual(prev, value)) w.duplicates++;
      last.set(path, value);
      afterFrame();
    },
    onRemoval: (path) => {
      w.removals.push(path);
      last.delete(path);
      if (wasLive) afterFrame();
    },
    onResume: (info) => w.resumes.push({ resumed: info.resumed, epochChanged: info.epochChanged }),
  });
  return w;
}

async function accountsTable(): Promise<Map<string, JsonObject>> {
  const out = new Map<string, JsonObject>();
  for (const r of (await db.query<{ id: number; branch: number; balance: number }>('SELECT * FROM accounts')).rows) {
    out.set(`accounts/${r.branch}/${r.id}`, { id: r.id, branch: r.branch, balance: r.balance });
  }
  return out;
}

async function waitForTable(w: Watcher): Promise<void> {
  const table = await accountsTable();
  await waitFor('the client to hold exactly the table', () => w.sub.values.size === table.size && [...table].every(([p, v]) => jsonEqual(w.sub.values.get(p) ?? null, v)), 30_000);
}

/** Sequential scans of a table so far; Postgres publishes backend counters within about a second. */
async function seqScans(table: string): Promise<number> {
  await new Promise((r) => setTimeout(r, 1200));
  await db.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await db.query<{ n: string }>('SELECT seq_scan::text AS n FROM pg_stat_user_tables WHERE relname = $1', [table]);
  return Number(rows[0].n);
}

async function health(port: number): Promise<{ status: string; topics: number; sources: Array<Record<string, unknown>> }> {
  return (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { status: string; topics: number; sources: Array<Record<string, unknown>> };
}

test('kill -9 during a transfer burst, restart: the client resumes in the same epoch, the table is not read again, the sum holds after every frame', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-kill-'));
  const port = await freePort();
  svc = await startServiceProcess(config(dir, 'st_kill'), port);
  const w = watchAccounts(port);
  await w.client.connect();
  await waitFor('initial values', () => w.sub.live && w.sub.values.size === ACCOUNTS);
  const epoch = w.client.epoch;
  assert.equal((await health(port)).sources[0].startedBy, 'snapshot');

  const transfers = startTransfers(db.url);
  await new Promise((r) => setTimeout(r, 1500));
  const scansBefore = await seqScans('accounts');
  assert.equal(await svc.kill('SIGKILL'), null, 'killed, not stopped');
  await new Promise((r) => setTimeout(r, 300)); // transfers go on while tidewire is down
  svc = await startServiceProcess(config(dir, 'st_kill'), port);
  await new Promise((r) => setTimeout(r, 1000));
  const count = await transfers.stop();
  assert.ok(count > 50, `transfers ran (${count})`);

  // Before the test reads the table itself (a sequential scan of its own).
  assert.equal(await seqScans('accounts'), scansBefore, 'the table was not read again');
  await waitForTable(w);
  assert.equal(w.client.epoch, epoch, 'the restarted service serves the same epoch');
  assert.ok(w.resumes.length > 0, 'the subscription was resumed');
  for (const r of w.resumes) {
    assert.notEqual(r.resumed, 'fresh', 'never resumed fresh');
    assert.equal(r.epochChanged, false);
  }
  assert.equal((await health(port)).sources[0].startedBy, 'resumed');
  assert.deepEqual(w.violations, [], 'the sum of balances held after every frame');
  assert.equal(w.duplicates, 0, 'no value emitted twice');
  assert.deepEqual(w.removals, [], 'no removal');
  assert.equal(w.blanks, 0);
  w.client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
});

test('slot dropped while stopped: every table is re-read, diffed against the state: same epoch, no removal of an existing row, never blank', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-slot-'));
  const port = await freePort();
  svc = await startServiceProcess(config(dir, 'st_slot'), port);
  const w = watchAccounts(port);
  await w.client.connect();
  await waitFor('initial values', () => w.sub.live && w.sub.values.size === ACCOUNTS);
  const epoch = w.client.epoch;

  assert.equal(await svc.kill('SIGTERM'), 0, 'stopped gracefully');
  await db.query(`SELECT pg_drop_replication_slot('st_slot')`);
  await db.query('UPDATE accounts SET balance = balance - 7 WHERE id = 1');
  await db.query('UPDATE accounts SET balance = balance + 7 WHERE id = 2');
  const transfers = startTransfers(db.url);
  svc = await startServiceProcess(config(dir, 'st_slot'), port);
  await new Promise((r) => setTimeout(r, 800));
  await transfers.stop();

  await waitForTable(w);
  assert.equal(w.client.epoch, epoch, 'same epoch after a re-snapshot');
  assert.equal((await health(port)).sources[0].startedBy, 're-snapshot');
  assert.match(svc.output(), /snapshot diffed against the stored state/);
  assert.deepEqual(w.removals, [], 'no row that still exists was removed');
  assert.equal(w.blanks, 0, 'the client never held zero accounts');
  assert.deepEqual(w.violations, [], 'the sum held after every frame');
  assert.equal(w.duplicates, 0);
  for (const r of w.resumes) assert.notEqual(r.resumed, 'fresh');
  w.client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
});

test('store deleted while stopped: a new epoch, and the SDK keeps what it holds until the new state is whole: no removal, never blank, the sum holds', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-deleted-'));
  const port = await freePort();
  svc = await startServiceProcess(config(dir, 'st_deleted'), port);
  const w = watchAccounts(port);
  await w.client.connect();
  await waitFor('initial values', () => w.sub.live && w.sub.values.size === ACCOUNTS);
  const epoch = w.client.epoch;

  assert.equal(await svc.kill('SIGTERM'), 0, 'stopped gracefully');
  rmSync(dir, { recursive: true, force: true });
  const transfers = startTransfers(db.url);
  await new Promise((r) => setTimeout(r, 300)); // transfers while tidewire is down
  svc = await startServiceProcess(config(dir, 'st_deleted'), port);
  await new Promise((r) => setTimeout(r, 800));
  const count = await transfers.stop();
  assert.ok(count > 20, `transfers ran (${count})`);

  await waitForTable(w);
  assert.notEqual(w.client.epoch, epoch, 'no state: a new epoch');
  assert.equal((await health(port)).sources[0].startedBy, 'snapshot');
  assert.deepEqual(w.resumes.map((r) => [r.resumed, r.epochChanged]), [['fresh', true]]);
  assert.deepEqual(w.removals, [], 'no row that still exists was removed');
  assert.equal(w.blanks, 0, 'the client never held zero accounts');
  assert.deepEqual(w.violations, [], 'the sum held after every frame');
  assert.equal(w.duplicates, 0, 'values that did not change were not reported again');
  w.client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
});

test('the mapping of one table changed: only that table is re-read; the other resumes from the stream', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-map-'));
  // Another source's topic and fingerprint in the same state (as a Kafka feed leaves them): the
  // Postgres connector's re-reads and resumes must leave both alone.
  const seed = await LmdbStateStore.open(dir, { identity: {}, epoch: 'seeded-epoch' });
  await seed.commit({ changes: [{ type: 'upsert', path: 'feed/1', tenant: 'default', source: 'kafka:feed', version: 3, value: { n: 1 } }], seq: 1 });
  await seed.setFingerprint('kafka:feed', 'kafka-fingerprint');
  await seed.close();
  const port = await freePort();
  svc = await startServiceProcess(config(dir, 'st_map'), port);
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 400 } });
  const notes = client.subscribe('notes/**', {});
  await client.connect();
  await waitFor('notes', () => notes.live && notes.values.size === 20);
  assert.equal(notes.values.get('notes/3')!.secret, 's3');
  assert.equal(await svc.kill('SIGTERM'), 0);

  const accountScans = await seqScans('accounts');
  const noteScans = await seqScans('notes');
  await db.query(`UPDATE notes SET body = 'edited while down' WHERE id = 4`);
  svc = await startServiceProcess(config(dir, 'st_map', { exclude: ['secret'] }), port);
  await waitFor('notes without the excluded column', () => [...notes.values.values()].every((v) => !('secret' in v)) && notes.values.get('notes/4')?.body === 'edited while down', 20_000);
  assert.equal((await health(port)).sources[0].startedBy, 'resumed, some tables re-read');
  assert.equal(await seqScans('accounts'), accountScans, 'accounts was not read again');
  assert.ok((await seqScans('notes')) > noteScans, 'notes was read again');
  // Changes after the re-read flow as usual.
  await db.query(`UPDATE notes SET body = 'after' WHERE id = 5`);
  await waitFor('a streamed change of the re-read table', () => notes.values.get('notes/5')?.body === 'after');
  assert.equal(client.epoch, 'seeded-epoch', 'the epoch of the state it found');
  const feed = await fetch(`http://127.0.0.1:${port}/topics/feed/1`);
  assert.equal(feed.status, 200, 'the other source\'s topic is still there');
  client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
  const after = await LmdbStateStore.open(dir, { identity: {} });
  try {
    assert.equal(after.fingerprints()['kafka:feed'], 'kafka-fingerprint', 'its fingerprint is kept');
  } finally {
    await after.close();
  }
});

test('Postgres restarted in the middle of the snapshot: tidewire starts the snapshot over and converges; it does not exit', async () => {
  await db.query('CREATE TABLE big (id int PRIMARY KEY, grp int NOT NULL, pad text NOT NULL)');
  await db.query(`INSERT INTO big SELECT i, i % 10, repeat('x', 20) FROM generate_series(1, 150000) i`);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-pgrestart-'));
    const port = await freePort();
    const file = join(tmpdir(), `tidewire-pgrestart-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({}));
    const cfg = {
      log: { level: 'info' },
      state: { dir },
      postgres: { url: db.url, slot: 'st_big', publication: 'st_big', snapshotBatchRows: 200, tables: [{ table: 'public.big', path: 'big/{grp}/{id}' }] },
    };
    // Started without waiting for health: the snapshot is what is interrupted.
    const started = startServiceProcess(cfg, port);
    await waitFor('the snapshot to be under way', async () => {
      const h = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json() as Promise<{ sources: Array<{ state: string; snapshot: Array<{ rows: number }> }> }>).catch(() => null);
      return h !== null && h.sources[0].state === 'snapshotting' && (h.sources[0].snapshot[0]?.rows ?? 0) > 2000;
    }, 60_000, 20);
    // A client subscribing now, mid-snapshot, gets no answer until the state is complete.
    const early = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const answers: Array<{ type: string; topics?: number }> = [];
    early.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Array<{ type: string; topics?: number }> | { type: string };
      for (const m of Array.isArray(frame) ? frame : [frame]) if (m.type === 'subscribed' || m.type === 'value') answers.push(m);
    });
    await new Promise((r) => early.once('open', r));
    early.send(JSON.stringify({ type: 'subscribe', id: 'early', selector: 'big/3/**' }));
    await db.restart();
    svc = await started;
    const h = await health(port);
    assert.equal(h.status, 'ok');
    assert.match(svc.output(), /the snapshot was interrupted: starting it over in a new snapshot/);
    assert.equal(h.topics, 150000, 'every row is a topic');
    await waitFor('the early subscription to be answered', () => answers.some((m) => m.type === 'subscribed'));
    const subscribed = answers.find((m) => m.type === 'subscribed')!;
    assert.equal(subscribed.topics, 15000, 'answered only once the table was read whole');
    assert.equal(answers.filter((m) => m.type === 'value').length, 15000, 'with every value of the branch');
    early.close();
    // One branch through a client (the whole table's initial values would not fit one send queue).
    const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws` });
    const sub = client.subscribe('big/3/**', {});
    await client.connect();
    await waitFor('every row of the branch', () => sub.live && sub.values.size === 15000, 30_000);
    client.close();
    await svc.kill('SIGTERM');
    svc = undefined;
  } finally {
    await db.query('DROP TABLE big');
  }
});

test('kill -9 during the first snapshot, restart: what was stored is a part, so subscribes wait for the whole table', async () => {
  await db.query('CREATE TABLE first (id int PRIMARY KEY, grp int NOT NULL, pad text NOT NULL)');
  await db.query(`INSERT INTO first SELECT i, i % 10, repeat('x', 20) FROM generate_series(1, 60000) i`);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-firstkill-'));
    const port = await freePort();
    const cfg = {
      log: { level: 'info' },
      state: { dir },
      postgres: { url: db.url, slot: 'st_first', publication: 'st_first', snapshotBatchRows: 200, tables: [{ table: 'public.first', path: 'first/{grp}/{id}' }] },
    };
    const snapshotRows = async () => {
      const h = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json() as Promise<{ topics: number; sources: Array<{ state: string; snapshot: Array<{ rows: number }> }> }>).catch(() => null);
      return h === null ? null : { state: h.sources[0].state, rows: h.sources[0].snapshot[0]?.rows ?? 0, topics: h.topics };
    };
    let child: ChildProcess | undefined;
    const first = startServiceProcess(cfg, port, { onSpawn: (c) => (child = c) });
    first.catch(() => {}); // killed before it is healthy
    await waitFor('the first snapshot to be under way', async () => ((await snapshotRows())?.rows ?? 0) > 5000, 60_000, 20);
    const exited = new Promise((r) => child!.once('exit', r));
    child!.kill('SIGKILL');
    await exited; // reaped: a zombie would still own state.dir
    const stored = await LmdbStateStore.open(dir, { identity: {}, epoch: 'unused' });
    const part = [...stored.topics()].length;
    await stored.close();
    assert.ok(part > 0 && part < 60000, `a part of the table was stored (${part} topics)`);
    const restarted = startServiceProcess(cfg, port);
    await waitFor('the restarted process to listen', async () => (await snapshotRows()) !== null, 60_000, 20);
    const early = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const answers: Array<{ type: string; topics?: number }> = [];
    early.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Array<{ type: string; topics?: number }> | { type: string };
      for (const m of Array.isArray(frame) ? frame : [frame]) if (m.type === 'subscribed' || m.type === 'value') answers.push(m);
    });
    await new Promise((r) => early.once('open', r));
    early.send(JSON.stringify({ type: 'subscribe', id: 'early', selector: 'first/3/**' }));
    svc = await restarted;
    await waitFor('the early subscription to be answered', () => answers.some((m) => m.type === 'subscribed'), 30_000);
    assert.equal(answers.find((m) => m.type === 'subscribed')!.topics, 6000, 'answered only once the table was read whole');
    assert.equal(answers.filter((m) => m.type === 'value').length, 6000, 'with every value of the branch, once');
    early.close();
    await svc.kill('SIGTERM');
    svc = undefined;
  } finally {
    await db.query('DROP TABLE first');
  }
});

test('a damaged store, or one written for another database, is refused with an error naming state.dir', async () => {
  const damaged = mkdtempSync(join(tmpdir(), 'tidewire-state-bad-'));
  writeFileSync(join(damaged, 'data.mdb'), 'this is not an LMDB file at all, just text that happens to be here'.repeat(100));
  const port = await freePort();
  await assert.rejects(startServiceProcess(config(damaged, 'st_bad'), port), (err: Error) => {
    assert.match(err.message, /STATE_CORRUPT|damaged/);
    assert.ok(err.message.includes(damaged), 'names the dir');
    assert.match(err.message, /delete .* to rebuild the state/i);
    return true;
  });

  // A store of this database, then the same dir pointed at another cluster.
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-foreign-'));
  svc = await startServiceProcess(config(dir, 'st_foreign'), port);
  await svc.kill('SIGTERM');
  svc = undefined;
  const other = await startPostgres();
  try {
    await other.query('CREATE TABLE accounts (id int PRIMARY KEY, branch int NOT NULL, balance int NOT NULL)');
    await other.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, secret text NOT NULL)');
    const foreign = { ...(config(dir, 'st_foreign') as { postgres: object }), postgres: { ...(config(dir, 'st_foreign') as { postgres: object }).postgres, url: other.url } };
    await assert.rejects(startServiceProcess(foreign, port), (err: Error) => {
      assert.match(err.message, /STATE_FOREIGN_SOURCE|another cluster or database/);
      assert.ok(err.message.includes(dir), 'names the dir');
      return true;
    });
  } finally {
    await other.stop();
  }
});

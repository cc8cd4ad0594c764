/**
 * The life of a `tidewire start` process as operators see it: during the initial snapshot of a big
 * table /ready answers 503 (why: snapshotting), a terminal shows a progress bar and the log a
 * `snapshot progress` record every few hundred ms; then /ready answers 200. On SIGTERM the process
 * closes its sessions with 1001, acknowledges what it applied and exits 0 within seconds, leaving
 * the slot inactive at or past the last change.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { parseLsn } from '../../connectors/postgres/index.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIG_ROWS = 150_000;
let db: TestPostgres;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE big (id int PRIMARY KEY, grp int NOT NULL, payload text NOT NULL)');
  await db.query(`INSERT INTO big SELECT i, i % 100, md5(i::text) FROM generate_series(1, ${BIG_ROWS}) i`);
  await db.query('ANALYZE big');
  await db.query('CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)');
  await db.query(`INSERT INTO orders SELECT i, 'new' FROM generate_series(1, 10) i`);
});
after(() => db?.stop());

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const hasScript = spawnSync('script', ['--version']).status === 0;

test('/ready is 503 while the big table is snapshotted, with a progress bar on the terminal and progress in the log; then 200', { skip: !hasScript && 'needs util-linux script(1) for a terminal' }, async () => {
  const port = await freePort();
  const file = join(tmpdir(), `tidewire-lifecycle-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({
    // JSON lines even on the terminal script(1) gives it, so the test can read the records.
    log: { level: 'info', format: 'json', progressIntervalMs: 200 },
    state: { dir: mkdtempSync(join(tmpdir(), 'tidewire-lifecycle-state-')) },
    postgres: { url: db.url, slot: 'big_slot', publication: 'big_pub', snapshotBatchRows: 500, tables: [{ table: 'big', path: 'big/{grp}/{id}' }] },
  }));
  // script(1) gives the process a terminal, as a user starting tidewire by hand has.
  const cmd = `stty cols 200; exec ${process.execPath} ${join(ROOT, 'bin/tidewire.mjs')} start --config ${file} --port ${port}`;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, TIDEWIRE_DATABASE_URL: '', COLUMNS: '200' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const seen: Array<{ status: number; reasons: string[] }> = [];
    await waitFor('/ready to answer 200', async () => {
      if (child.exitCode !== null) throw new Error(`tidewire exited: ${out.slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null);
      if (!r) return false;
      const body = (await r.json()) as { ready: boolean; reasons: string[] };
      seen.push({ status: r.status, reasons: body.reasons });
      assert.equal(body.ready, r.status === 200);
      return r.status === 200;
    }, 45_000, 50);
    const snapshotting = seen.filter((s) => s.status === 503 && s.reasons.some((x) => x.startsWith('postgres: snapshotting')));
    assert.ok(snapshotting.length >= 2, `503 (postgres: snapshotting) seen during the snapshot: ${JSON.stringify(seen.slice(0, 5))}`);
    assert.match(snapshotting[0].reasons[0], /^postgres: snapshotting \(reading 1 table\(s\) at [0-9A-F]+\/[0-9A-F]+\)$/);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, new RegExp(`^tidewire_snapshot_rows\\{table="public.big"\\} ${BIG_ROWS}$`, 'm'));

    // The terminal: an updating bar, then the table's final line.
    const screen = out.replace(/\r\n/g, '\n');
    const bars = [...screen.matchAll(/\rsnapshot public\.big ▕([█░]{12})▏ +(\d+)% ([\d.]+k)\/150k rows ([\d.]+k?) rows\/s( ETA \d+:\d\d)?\x1b\[K/g)];
    const dump = join(tmpdir(), `tidewire-lifecycle-${process.pid}.screen`);
    writeFileSync(dump, screen);
    assert.ok(bars.length >= 2, `progress bar lines in ${dump}`);
    assert.match(screen, /\rsnapshot public\.big ▕█{12}▏ 100% 150k rows in \d+:\d\d \([\d.]+k rows\/s\)\x1b\[K\n/);
    // The log: structured progress records.
    const progress = screen.split('\n').flatMap((l) => {
      const i = l.indexOf('{"level"');
      if (i < 0) return [];
      const rec = JSON.parse(l.slice(i)) as { msg: string; table?: string; rows?: number; total?: number; rowsPerSecond?: number; etaSeconds?: number | null };
      return rec.msg === 'snapshot progress' ? [rec] : [];
    });
    assert.ok(progress.length >= 1, 'at least one snapshot progress record');
    for (const p of progress) {
      assert.equal(p.table, 'public.big');
      assert.equal(p.total, BIG_ROWS);
      assert.ok(p.rows! > 0 && p.rows! <= BIG_ROWS);
      assert.ok(p.rowsPerSecond! > 0);
      assert.ok(p.etaSeconds === null || p.etaSeconds! >= 0);
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

test('SIGTERM: sessions closed with 1001, the last change acknowledged, the slot left inactive, exit 0 within seconds', async () => {
  const port = await freePort();
  const svc = await startServiceProcess({
    log: { level: 'info' },
    postgres: { url: db.url, slot: 'term_slot', publication: 'term_pub', tables: [{ table: 'orders', path: 'orders/{id}' }] },
  }, port);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    let applied = false;
    ws.on('message', (data) => {
      for (const m of JSON.parse(String(data)) as Array<{ path?: string; version?: number }>) if (m.path === 'orders/3' && m.version === 2) applied = true;
    });
    await new Promise((resolve) => ws.on('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector: 'orders/**' }));

    await db.query('BEGIN');
    await db.query(`UPDATE orders SET status = 'paid' WHERE id = 3`);
    const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    await db.query('COMMIT');
    const changeLsn = parseLsn(rows[0].lsn);
    await waitFor('the change to reach the client', () => applied);
    assert.ok((await slot()).active);

    const t0 = Date.now();
    const code = await svc.kill('SIGTERM');
    const ms = Date.now() - t0;
    assert.equal(code, 0, svc.output().slice(-2000));
    assert.ok(ms < 5_000, `exited in ${ms} ms`);
    assert.equal(await closed, 1001, 'the session was closed as going away');
    const after = await waitFor('the walsender to let go of the slot', async () => {
      const s = await slot();
      return s.active ? null : s;
    }, 5_000);
    assert.ok(parseLsn(after!.confirmed_flush_lsn) >= changeLsn, `confirmed ${after!.confirmed_flush_lsn} ≥ change ${rows[0].lsn}`);
    assert.match(svc.output(), /"msg":"shut down"/);
  } finally {
    await svc.kill('SIGKILL');
  }
});

async function slot(): Promise<{ active: boolean; confirmed_flush_lsn: string }> {
  const { rows } = await db.query<{ active: boolean; confirmed_flush_lsn: string }>(
    `SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'term_slot'`,
  );
  return rows[0];
}

/**
 * `tidewire slots` against a real Postgres: lists tidewire's slots with their lag, drops an
 * inactive one, and refuses to drop one a running connector streams from.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { PostgresConnector } from '../../connectors/postgres/index.ts';
import { parseConfig } from '../../services/config/config.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
let db: TestPostgres;
let connector: PostgresConnector;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE orders (id int PRIMARY KEY, item text)');
  await db.query(`SELECT pg_create_logical_replication_slot('tidewire_idle', 'pgoutput')`);
  await db.query(`SELECT pg_create_logical_replication_slot('custom_slot', 'pgoutput')`);
  await db.query(`SELECT pg_create_physical_replication_slot('standby_one')`);
  // WAL after the idle slots' positions: they now hold it back.
  await db.query(`INSERT INTO orders SELECT i, repeat('x', 200) FROM generate_series(1, 2000) i`);
  const config = parseConfig({ postgres: { url: db.url, slot: 'tidewire_active', publication: 'slots_pub', tables: [{ table: 'orders', path: 'orders/{id}' }] } }, {});
  const store = new TopicStore();
  connector = new PostgresConnector(config.postgres!, new Pipeline(store, new InProcessHandoff(store)), { logger: pino({ level: 'silent' }) });
  await connector.start();
});
after(async () => {
  await connector?.stop();
  await db?.stop();
});

function slots(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'slots', ...args], { cwd: ROOT, env: { ...process.env, TIDEWIRE_DATABASE_URL: '' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

async function slotRow(name: string) {
  const { rows } = await db.query<{ active: boolean; active_pid: number | null; lag: string }>(
    `SELECT active, active_pid, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [name],
  );
  return rows[0];
}

test("lists tidewire's slots with their state and lag in bytes", async () => {
  const r = await slots('--url', db.url);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.deepEqual(lines[0].split(/\s+/), ['SLOT', 'ACTIVE', 'PID', 'RESTART_LSN', 'CONFIRMED_LSN', 'LAG_BYTES', 'LAG']);
  const byName = new Map(lines.slice(1).map((l) => [l.split(/\s+/)[0], l.split(/\s+/)]));
  assert.deepEqual([...byName.keys()].sort(), ['tidewire_active', 'tidewire_idle'], 'only tidewire slots without --all');
  const active = byName.get('tidewire_active')!;
  assert.equal(active[1], 'yes');
  assert.equal(Number(active[2]), (await slotRow('tidewire_active')).active_pid);
  const idle = byName.get('tidewire_idle')!;
  assert.equal(idle[1], 'no');
  assert.equal(idle[2], '-');
  assert.match(idle[3], /^[0-9A-F]+\/[0-9A-F]+$/);
  const lag = Number(idle[5]);
  assert.ok(lag > 400_000, `the idle slot holds back the 2000 inserted rows' WAL: ${lag} bytes`);
  assert.ok(lag <= Number((await slotRow('tidewire_idle')).lag), 'lag is pg_current_wal_lsn() - confirmed_flush_lsn');

  const json = JSON.parse((await slots('--url', db.url, '--all', '--json')).out) as Array<{ name: string; slotType: string; lagBytes: number | null }>;
  assert.deepEqual(json.map((s) => s.name).sort(), ['custom_slot', 'standby_one', 'tidewire_active', 'tidewire_idle']);
  assert.equal(json.find((s) => s.name === 'standby_one')!.slotType, 'physical');
});

test('with --config, the configured slot is listed whatever its name', async () => {
  const file = join(tmpdir(), `tidewire-slots-${process.pid}.yaml`);
  writeFileSync(file, `postgres:\n  url: ${db.url}\n  slot: custom_slot\n  tables:\n    - table: orders\n      path: orders/{id}\n`);
  const r = await slots('--config', file);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^custom_slot\s+no\s/m);
});

test('drops an inactive slot, and refuses an active one, a missing one and a physical one', async () => {
  const active = await slots('--url', db.url, '--drop', 'tidewire_active');
  assert.equal(active.code, 1);
  const pid = (await slotRow('tidewire_active')).active_pid;
  assert.equal(
    active.err.trim(),
    `tidewire: slot "tidewire_active" is active: process ${pid} (tidewire-replication) streams from it. Stop the tidewire using it first; if that process is stale, end it with SELECT pg_terminate_backend(${pid}) and drop again`,
  );
  assert.ok(await slotRow('tidewire_active'), 'the active slot is still there');

  const physical = await slots('--url', db.url, '--drop', 'standby_one');
  assert.equal(physical.code, 1);
  assert.match(physical.err, /slot "standby_one" is a physical slot, not one of tidewire's/);

  const missing = await slots('--url', db.url, '--drop', 'nosuch');
  assert.equal(missing.code, 1);
  assert.match(missing.err, /has no replication slot named "nosuch" \(tidewire slots --all lists them\)/);

  const dropped = await slots('--url', db.url, '--drop', 'tidewire_idle');
  assert.equal(dropped.code, 0, dropped.err);
  assert.match(dropped.out, /^dropped replication slot "tidewire_idle" \(it held \d+(\.\d)? kB WAL\)/);
  assert.equal(await slotRow('tidewire_idle'), undefined);
});

test('--drop says what it did with the publication: left in place, with how to drop it', async () => {
  // By --url: the publication named like the slot, when there is one.
  await db.query(`SELECT pg_create_logical_replication_slot('tidewire_lone', 'pgoutput')`);
  const lone = await slots('--url', db.url, '--drop', 'tidewire_lone');
  assert.equal(lone.code, 0, lone.err);
  assert.equal(lone.out.split('\n')[1], 'no publication "tidewire_lone" (the slot\'s name) exists: nothing else to drop (--config names the publication of a configuration)');
  // By --config: the configuration's publication, which the slot's drop leaves as it was.
  await db.query(`SELECT pg_create_logical_replication_slot('tidewire_cfg', 'pgoutput')`);
  const file = join(tmpdir(), `tidewire-slots-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ postgres: { url: db.url, slot: 'tidewire_cfg', publication: 'slots_pub', tables: [{ table: 'orders', path: 'orders/{id}' }] } }));
  const cfg = await slots('--config', file, '--drop', 'tidewire_cfg');
  assert.equal(cfg.code, 0, cfg.err);
  assert.equal(
    cfg.out.split('\n')[1],
    'the configured publication "slots_pub" was left in place (1 table(s); a publication holds no WAL, and tidewire start reuses it): once no tidewire uses it, DROP PUBLICATION "slots_pub" removes it',
  );
  assert.equal((await db.query(`SELECT 1 FROM pg_publication WHERE pubname = 'slots_pub'`)).rows.length, 1, 'the publication is still there');
});

test('without --config or --url it says what it needs', async () => {
  const r = await slots();
  assert.equal(r.code, 1);
  assert.match(r.err, /slots needs --config <file> or --url <postgres url>/);
});

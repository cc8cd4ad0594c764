/**
 * The state store on real files in a temp dir: what a restart relies on (round trip, positions
 * only with their commit, durability across SIGKILL, whole transactions, group commit order)
 * and the errors an operator gets for a store that cannot be used.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { fields } from '../../support/stored-topic.ts';
import { LmdbStateStore, STATE_FORMAT_VERSION, StateError, type StateChange, type StateErrorCode } from '../../../services/state/index.ts';

/** Topics the crash writer rewrites in every commit besides the two accounts: one commit spans many pages. */
const FILLER = 200;
const root = mkdtempSync(join(tmpdir(), 'tidewire-state-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `s${++n}`);
const identity = { postgres: '7301234567890123456/app' };

function upsert(path: string, version: number, value: Record<string, unknown>, source = 'postgres:public.t'): StateChange {
  return { type: 'upsert', path, tenant: 'default', source, version, value: value as never };
}

async function rejectsWith(p: Promise<unknown>, code: StateErrorCode, dir: string, ...phrases: string[]): Promise<StateError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof StateError, `expected a StateError ${code}, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.includes(dir), `the message names the dir: ${caught.message}`);
  for (const p of phrases) assert.ok(caught.message.toLowerCase().includes(p.toLowerCase()), `the message says "${p}": ${caught.message}`);
  return caught;
}

test('round trip: topics, removals, positions, fingerprints, epoch and identity survive a reopen; topics come back in path order', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity, epoch: 'e-1' });
  assert.equal(s.created, true);
  assert.equal(s.seq, 0);
  const values = {
    'orders/2/10': { id: 10, qty: 3, tags: ['a', 'b'], doc: { deep: { x: null, y: 1.5 } } },
    'orders/10/1': { id: 1, note: 'Zürich → 東京 🚚' },
    'orders/~/%2F': { id: 'encoded' },
    'zones/é': { big: '9007199254740993' },
    'gone/1': { id: 'removed later' },
  };
  await s.commit({ changes: Object.entries(values).map(([p, v], i) => upsert(p, i + 1, v)), positions: { postgres: '0/16B3748' }, seq: 1 });
  await s.commit({ changes: [{ type: 'removal', path: 'gone/1' }, upsert('orders/2/10', 9, { ...values['orders/2/10'], qty: 4 })], positions: { postgres: '0/16B3800' }, seq: 2 });
  await s.setFingerprint('public.orders', 'sha256:abc');
  await s.setFingerprint('public.zones', 'sha256:def');
  await s.setFingerprint('public.zones', null);
  await s.setIdentity({ kafka: 'cluster-1' });
  await s.close();

  const r = await LmdbStateStore.open(dir, { identity });
  assert.equal(r.created, false);
  assert.equal(r.epoch, 'e-1');
  assert.equal(r.seq, 2);
  assert.deepEqual(r.positions(), { postgres: '0/16B3800' });
  assert.deepEqual(r.fingerprints(), { 'public.orders': 'sha256:abc' });
  assert.deepEqual(r.identity, { ...identity, kafka: 'cluster-1' });
  assert.equal(r.topicCount, 4);
  const paths = [...r.topics()].map((t) => t.path);
  const utf8Order = Object.keys(values).filter((p) => p !== 'gone/1').sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(paths, utf8Order);
  assert.deepEqual(fields(r.get('orders/2/10')), { path: 'orders/2/10', tenant: 'default', source: 'postgres:public.t', version: 9, value: { ...values['orders/2/10'], qty: 4 } });
  assert.deepEqual(r.get('orders/10/1')?.value, values['orders/10/1']);
  assert.equal(r.get('gone/1'), undefined);
  assert.deepEqual([...r.topics('orders/2')].map((t) => t.path), utf8Order.filter((p) => Buffer.compare(Buffer.from(p), Buffer.from('orders/2')) >= 0));
  await r.close();
});

test('positions advance only with their commit: not before it is durable, never for a refused commit', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity });
  await s.commit({ changes: [upsert('a', 1, { v: 1 })], positions: { postgres: '0/10' }, seq: 1 });
  const pending = s.commit({ changes: [upsert('a', 2, { v: 2 })], positions: { postgres: '0/20' }, seq: 2 });
  assert.deepEqual(s.positions(), { postgres: '0/10' }, 'not durable yet');
  assert.equal(s.seq, 1);
  await pending;
  assert.deepEqual(s.positions(), { postgres: '0/20' });
  await rejectsWith(s.commit({ changes: [upsert('a', 3, { v: 3 })], positions: { postgres: '0/30' }, seq: 1 }), 'STATE_INVALID_COMMIT', dir, 'seq');
  await rejectsWith(s.commit({ changes: [upsert('a', 3, { v: 3n })], positions: { postgres: '0/30' }, seq: 3 }), 'STATE_INVALID_COMMIT', dir, 'not JSON');
  await rejectsWith(s.commit({ changes: [upsert('x'.repeat(2000), 1, {})], positions: { postgres: '0/30' }, seq: 3 }), 'STATE_INVALID_COMMIT', dir, 'UTF-8 bytes');
  assert.deepEqual(s.positions(), { postgres: '0/20' });
  await s.close();
  const r = await LmdbStateStore.open(dir, { identity });
  assert.deepEqual(r.positions(), { postgres: '0/20' });
  assert.equal(r.seq, 2);
  assert.equal(r.get('a')?.version, 2);
  await r.close();
});

test('a commit ending inside a transaction applied in parts is marked open, across a reopen, until one ends it; a commit that does not say keeps the mark', async () => {
  const dir = freshDir();
  let s = await LmdbStateStore.open(dir, { identity });
  assert.equal(s.openTransaction, false);
  await s.commit({ changes: [upsert('a', 1, { v: 1 })], seq: 1, open: true });
  assert.equal(s.openTransaction, true);
  await s.commit({ changes: [], positions: { postgres: '0/10' }, seq: 1 }); // a position alone says nothing of it
  await s.close();
  s = await LmdbStateStore.open(dir, { identity });
  assert.equal(s.openTransaction, true, 'a crash inside the transaction: the state holds a part of it');
  await s.commit({ changes: [upsert('b', 1, { v: 1 })], seq: 2, open: false });
  await s.close();
  s = await LmdbStateStore.open(dir, { identity });
  assert.equal(s.openTransaction, false);
  await s.close();
});

test('group commit: commits issued while a write is in flight share the next write, resolve in order, and apply in order', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity });
  const resolved: number[] = [];
  const all: Promise<void>[] = [];
  const issue = (i: number) => all.push(s.commit({ changes: [upsert('hot', i, { i }), upsert(`k/${i}`, 1, { i })], positions: { postgres: String(i) }, seq: i }).then(() => void resolved.push(i)));
  issue(1);
  await new Promise<void>((r) => setImmediate(r)); // the first write is now in flight
  for (let i = 2; i <= 100; i++) {
    issue(i);
    if (i === 50) all.push(s.setFingerprint('t', 'f50'));
    if (i === 80) all.push(s.setFingerprint('t', 'f80'));
  }
  await Promise.all(all);
  assert.deepEqual(resolved, Array.from({ length: 100 }, (_, i) => i + 1));
  assert.ok(s.writes <= 3, `100 commits took ${s.writes} writes`);
  assert.equal(s.get('hot')?.version, 100, 'the last change of a path wins');
  assert.deepEqual(s.positions(), { postgres: '100' });
  assert.deepEqual(s.fingerprints(), { t: 'f80' });
  await s.close();
  const r = await LmdbStateStore.open(dir, { identity });
  assert.equal(r.seq, 100);
  assert.equal(r.topicCount, 101);
  assert.deepEqual(r.fingerprints(), { t: 'f80' });
  await r.close();
});

test('maxChangesPerWrite bounds one write; out-of-range values are refused', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity, maxChangesPerWrite: 10 });
  await Promise.all(Array.from({ length: 100 }, (_, i) => s.commit({ changes: [upsert(`k/${i}`, 1, {})], seq: i + 1 })));
  assert.ok(s.writes >= 10, `${s.writes} writes for 100 changes at most 10 per write`);
  await s.close();
  await assert.rejects(LmdbStateStore.open(freshDir(), { identity, maxChangesPerWrite: 0 }), RangeError);
});

test('a commit after close is refused', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity });
  await s.close();
  await rejectsWith(s.commit({ changes: [], seq: 1 }), 'STATE_CLOSED', dir);
});

// ---------- crashes: a real child process killed with SIGKILL ----------

const fixture = fileURLToPath(new URL('./state-writer.fixture.ts', import.meta.url));
const repo = fileURLToPath(new URL('../../..', import.meta.url));

/** Starts the writer; resolves with the last commit it reported durable, once `killWhen` says so and it is dead. */
function runAndKill(dir: string, mode: 'serial' | 'transfers', killWhen: (durable: number) => boolean, delayMs = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fixture, dir, mode, String(FILLER)], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let last = 0;
    let buffered = '';
    let stderr = '';
    let killing = false;
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) last = Math.max(last, Number(l.split(' ')[1]));
      if (!killing && killWhen(last)) {
        killing = true;
        const kill = () => child.kill('SIGKILL');
        if (delayMs > 0) setTimeout(kill, delayMs);
        else kill();
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited by itself (${code}): ${stderr}`));
      // Lines already read are all it printed before dying: a durable line is only ever printed after its commit resolved.
      else resolve(last);
    });
  });
}

/** The store after a crash holds every commit up to its seq whole, and nothing of a later one. */
async function assertWhole(dir: string, atLeast: number): Promise<number> {
  const s = await LmdbStateStore.open(dir, { identity: { test: 'crash-fixture' } });
  const k = s.seq;
  assert.ok(k >= atLeast, `the store is at seq ${k}, but commit ${atLeast} had resolved before the kill`);
  assert.deepEqual(s.positions(), { test: String(k) });
  const a = s.get('accounts/a')!;
  const b = s.get('accounts/b')!;
  assert.equal((a.value.balance as number) + (b.value.balance as number), 1000, 'the transfer invariant holds');
  assert.equal(a.version, k);
  assert.equal(b.version, k);
  let fillers = 0;
  for (const t of s.topics('filler/')) {
    assert.equal(t.version, k, `${t.path} is from commit ${t.version}, the store from ${k}`);
    fillers++;
  }
  assert.equal(fillers, FILLER);
  await s.close();
  return k;
}

test('SIGKILL right after a commit resolved: the commit is there after reopening', { timeout: 60_000 }, async () => {
  const dir = freshDir();
  const durable = await runAndKill(dir, 'serial', (d) => d >= 20);
  assert.ok(durable >= 20);
  await assertWhole(dir, durable);
});

test('SIGKILL with commits in flight: each is there whole or not at all, and the store resumes where it was', { timeout: 120_000 }, async () => {
  const dir = freshDir();
  let seq = 0;
  for (const delay of [0, 37, 151]) {
    const durable = await runAndKill(dir, 'transfers', (d) => d > seq, delay);
    seq = await assertWhole(dir, durable);
  }
  assert.ok(seq > 0);
});

// ---------- stores that cannot be used ----------

test('a file that is not LMDB, or is truncated, is refused as corrupt, never opened (lmdb would crash the process)', async () => {
  const garbage = freshDir();
  mkdirSync(garbage);
  writeFileSync(join(garbage, 'data.mdb'), Buffer.alloc(65536, 7));
  await rejectsWith(LmdbStateStore.open(garbage, { identity }), 'STATE_CORRUPT', garbage, 'not an LMDB file', 'delete', 'state.dir');

  const short = freshDir();
  mkdirSync(short);
  writeFileSync(join(short, 'data.mdb'), 'tidewire');
  await rejectsWith(LmdbStateStore.open(short, { identity }), 'STATE_CORRUPT', short, 'too short');

  const cut = freshDir();
  const s = await LmdbStateStore.open(cut, { identity });
  await s.commit({ changes: Array.from({ length: 2000 }, (_, i) => upsert(`t/${i}`, 1, { pad: 'x'.repeat(200) })), seq: 1 });
  await s.close();
  truncateSync(join(cut, 'data.mdb'), Math.floor(statSync(join(cut, 'data.mdb')).size / 2));
  await rejectsWith(LmdbStateStore.open(cut, { identity }), 'STATE_CORRUPT', cut, 'truncated');
});

test('a record that does not decode is reported as corrupt with its path', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity });
  await s.commit({ changes: [upsert('ok', 1, {})], seq: 1 });
  await s.close();
  const env = open({ path: dir, encoding: 'string', maxDbs: 6, overlappingSync: false });
  await env.openDB({ name: 'topics', encoding: 'string' }).put('bad', '[1,"default"');
  await env.close();
  const r = await LmdbStateStore.open(dir, { identity });
  assert.throws(() => r.get('bad'), (e: StateError) => e.code === 'STATE_CORRUPT' && e.message.includes('bad') && e.message.includes(dir));
  // A walk decodes a record when a field past its path is first read (a walk of paths parses nothing).
  const walked = [...r.topics()];
  assert.deepEqual(walked.map((t) => t.path), ['bad', 'ok']);
  assert.throws(() => walked[0].value, (e: StateError) => e.code === 'STATE_CORRUPT' && e.message.includes('bad') && e.message.includes(dir));
  assert.equal(walked[1].version, 1);
  assert.equal(r.get('ok')?.version, 1);
  await r.close();
});

test('a store of another source identity is refused; a source not recorded yet is added', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity });
  await s.commit({ changes: [upsert('a', 1, {})], positions: { postgres: '0/10' }, seq: 1 });
  await s.close();
  await rejectsWith(LmdbStateStore.open(dir, { identity: { postgres: '9999999999999999999/app' } }), 'STATE_FOREIGN_SOURCE', dir, '7301234567890123456/app', '9999999999999999999/app', 'delete');
  const r = await LmdbStateStore.open(dir, { identity: { ...identity, kafka: 'k-1' } });
  assert.deepEqual(r.positions(), { postgres: '0/10' });
  await r.close();
  await rejectsWith(LmdbStateStore.open(dir, { identity: { kafka: 'k-2' } }), 'STATE_FOREIGN_SOURCE', dir, 'kafka');
});

test('a store in a format this build does not read is refused, naming both formats', async () => {
  const dir = freshDir();
  await (await LmdbStateStore.open(dir, { identity })).close();
  const env = open({ path: dir, encoding: 'string', maxDbs: 6, overlappingSync: false });
  await env.openDB({ name: 'meta', encoding: 'string' }).put('format', JSON.stringify({ store: 'tidewire-state', format: 99 }));
  await env.close();
  await rejectsWith(LmdbStateStore.open(dir, { identity }), 'STATE_FORMAT_UNSUPPORTED', dir, 'format 99', `format ${STATE_FORMAT_VERSION}`, 'newer', 'delete');
});

test('a dir holding something else is never written into', async () => {
  const dir = freshDir();
  mkdirSync(dir);
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  await rejectsWith(LmdbStateStore.open(dir, { identity }), 'STATE_NOT_A_STORE', dir, 'notes.txt');
  assert.deepEqual(readdirSync(dir), ['notes.txt']);

  const other = freshDir();
  const env = open({ path: other, maxDbs: 4 });
  await env.openDB({ name: 'users' }).put('u1', { name: 'x' });
  await env.close();
  await rejectsWith(LmdbStateStore.open(other, { identity }), 'STATE_NOT_A_STORE', other, 'users');

  const file = freshDir();
  writeFileSync(file, 'a file');
  await rejectsWith(LmdbStateStore.open(file, { identity }), 'STATE_NOT_A_STORE', file);
  assert.ok(existsSync(file));
});

test('one writer per dir: a second open, here or by a live process, is refused; a dead owner is taken over', async () => {
  const dir = freshDir();
  const s = await LmdbStateStore.open(dir, { identity });
  await rejectsWith(LmdbStateStore.open(dir, { identity }), 'STATE_LOCKED', dir, 'already open');
  await s.close();

  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    writeFileSync(join(dir, 'owner.pid'), String(other.pid));
    await rejectsWith(LmdbStateStore.open(dir, { identity }), 'STATE_LOCKED', dir, `process ${other.pid}`, 'owner.pid');
  } finally {
    other.kill('SIGKILL');
    await new Promise((r) => other.once('exit', r));
  }
  // The pid now names a process that is gone, as after a crash.
  const r = await LmdbStateStore.open(dir, { identity });
  await r.close();
  assert.equal(existsSync(join(dir, 'owner.pid')), false, 'close gives the dir up');
});

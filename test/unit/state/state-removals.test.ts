/**
 * The removal log and per-topic seq kept with durable state (resumes from a position across a
 * restart, docs/PROTOCOL.md "Resuming"): written in the commit that removes, bounded with a
 * floor that rises as the oldest are forgotten, read back at open; a format 1 store is marked 3
 * and its log reaches back only to its seq.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { open } from 'lmdb';
import { fields } from '../../support/stored-topic.ts';
import { LmdbStateStore } from '../../../services/state/index.ts';

const root = mkdtempSync(join(tmpdir(), 'tidewire-removals-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const identity = { postgres: 'sys/app' };
const up = (path: string, version: number, seq: number) => ({ type: 'upsert' as const, path, tenant: 'default', source: 's', version, value: { v: version }, seq });

test('removals are logged with their seq and read back after a reopen; topics keep their seq', async () => {
  const dir = join(root, `s${++n}`);
  let store = await LmdbStateStore.open(dir, { identity, epoch: 'e' });
  await store.commit({ seq: 1, changes: [up('a', 1, 1), up('b', 1, 1)] });
  await store.commit({ seq: 2, changes: [{ type: 'removal', path: 'a', version: 2, tenant: 'default' }] });
  await store.close();
  store = await LmdbStateStore.open(dir, { identity });
  assert.deepEqual([...store.removals().entries], [{ seq: 2, path: 'a', version: 2, tenant: 'default' }]);
  assert.equal(store.removals().floor, 0);
  assert.equal(store.get('b')!.seq, 1);
  await store.close();
});

test('past its capacity the oldest removals are forgotten and the floor rises to the newest forgotten', async () => {
  const dir = join(root, `s${++n}`);
  let store = await LmdbStateStore.open(dir, { identity, epoch: 'e', removalLog: 3 });
  for (let seq = 1; seq <= 6; seq++) await store.commit({ seq, changes: [{ type: 'removal', path: `p${seq}`, version: 2, tenant: 't' }] });
  assert.equal(store.removals().floor, 3);
  // Several commits in one group commit, and one commit with more removals than the capacity.
  await Promise.all([7, 8].map((seq) => store.commit({ seq, changes: [{ type: 'removal', path: `q${seq}`, version: 2, tenant: 't' }] })));
  assert.deepEqual([...store.removals().entries].map((e) => e.path), ['p6', 'q7', 'q8']);
  await store.commit({ seq: 9, changes: ['x', 'y', 'z', 'w'].map((path) => ({ type: 'removal' as const, path, version: 2, tenant: 't' })) });
  assert.equal(store.removals().floor, 9);
  assert.equal([...store.removals().entries].length, 3);
  await store.close();
  store = await LmdbStateStore.open(dir, { identity, removalLog: 3 });
  assert.equal(store.removals().floor, 9);
  await store.close();
});

test('a format 1 store is read, marked the current format, and its removal log reaches back to its seq only', async () => {
  const dir = join(root, `s${++n}`);
  const env = open({ path: dir, encoding: 'string', maxDbs: 8 });
  const meta = env.openDB<string, string>({ name: 'meta', encoding: 'string' });
  const topics = env.openDB<string, string>({ name: 'topics', encoding: 'string' });
  await env.transaction(() => {
    meta.put('format', JSON.stringify({ store: 'tidewire-state', format: 1 }));
    meta.put('identity', JSON.stringify(identity));
    meta.put('seq', '41');
    meta.put('epoch', 'old');
    topics.put('a', JSON.stringify([3, 'default', 's', { n: 1 }]));
  });
  await env.close();
  const store = await LmdbStateStore.open(dir, { identity });
  assert.equal(store.removals().floor, 41);
  assert.deepEqual(fields(store.get('a')), { path: 'a', tenant: 'default', source: 's', version: 3, value: { n: 1 } });
  await store.close();
});

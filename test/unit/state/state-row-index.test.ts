/**
 * Row indexes kept with durable state (services/state/stored-row-index.ts over LmdbStateStore):
 * written in the commit of the changes they belong to, answered from the heap only until that
 * commit is durable, reset and marked complete in order with commits, read back after a reopen;
 * a store from before row indexes has none complete.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { open } from 'lmdb';
import { LmdbStateStore, StateJournal } from '../../../services/state/index.ts';

const root = mkdtempSync(join(tmpdir(), 'tidewire-rows-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const identity = { postgres: 'sys/app' };
const SOURCE = 'postgres:public.accounts';

test('entries go with the commit that carries them; the heap answers only until it is durable; a reopen reads them back', async () => {
  const dir = join(root, `s${++n}`);
  let store = await LmdbStateStore.open(dir, { identity, epoch: 'e' });
  let journal = new StateJournal(store);
  const index = journal.rowIndex(SOURCE);
  assert.equal(index.complete, false, 'a new store holds no complete row index');
  index.clear(false);
  const writes = [index.set('[1]', 'accounts/1/1'), index.set('[2]', 'accounts/2/2')];
  assert.equal(index.get('[1]'), 'accounts/1/1', 'answered from the heap before it is written');
  assert.equal(store.rowPath(SOURCE, '[1]'), undefined, 'not in the store before its commit');
  journal.write(null, { name: 'postgres', position: '0/10' }, writes);
  index.completed();
  await journal.flushed();
  assert.equal(index.pending, 0, 'durable entries leave the heap');
  assert.equal(index.get('[2]'), 'accounts/2/2', 'and are read from the store');
  // A move and a delete in one commit; a write replaced before it is durable stays on the heap.
  const moved = index.set('[1]', 'accounts/3/1');
  const gone = index.set('[2]', null);
  journal.write(null, { name: 'postgres', position: '0/20' }, [moved, gone]);
  const again = index.set('[1]', 'accounts/4/1');
  await journal.flushed();
  assert.equal(index.get('[1]'), 'accounts/4/1', 'the later write is answered, not the durable one under it');
  assert.equal(store.rowPath(SOURCE, '[1]'), 'accounts/3/1');
  assert.equal(index.get('[2]'), undefined);
  journal.write(null, undefined, [again]);
  await journal.flushed();
  await store.close();

  store = await LmdbStateStore.open(dir, { identity });
  journal = new StateJournal(store);
  const reopened = journal.rowIndex(SOURCE);
  assert.equal(reopened.complete, true, 'marked complete with the state');
  assert.equal(reopened.get('[1]'), 'accounts/4/1');
  assert.equal(reopened.get('[2]'), undefined);
  assert.equal(journal.rowIndex('postgres:public.other').complete, false, 'each source has its own');
  await store.close();
});

test('a reset forgets every entry at once, and is stored in order with the commits around it', async () => {
  const dir = join(root, `s${++n}`);
  let store = await LmdbStateStore.open(dir, { identity, epoch: 'e' });
  const journal = new StateJournal(store);
  const index = journal.rowIndex(SOURCE);
  index.clear(false);
  journal.write(null, undefined, [index.set('[1]', 'a/1'), index.set('[2]', 'b/2')]);
  index.completed();
  await journal.flushed();
  index.clear(true); // a TRUNCATE: empty, and still complete
  assert.equal(index.get('[1]'), undefined, 'forgotten before the reset is durable');
  journal.write(null, undefined, [index.set('[3]', 'c/3')]);
  await journal.flushed();
  assert.equal(index.get('[1]'), undefined);
  assert.equal(index.get('[3]'), 'c/3');
  index.clear(false); // a read of the whole table begins, cut short by a stop
  await journal.flushed();
  await store.close();
  store = await LmdbStateStore.open(dir, { identity });
  assert.equal(store.rowsComplete(SOURCE), false, 'a read that did not end leaves the index incomplete');
  assert.equal(store.rowPath(SOURCE, '[3]'), undefined);
  await store.close();
});

test('a format 2 store (before row indexes) opens with none complete, and is marked the current format', async () => {
  const dir = join(root, `s${++n}`);
  const env = open({ path: dir, encoding: 'string', maxDbs: 8 });
  const meta = env.openDB<string, string>({ name: 'meta', encoding: 'string' });
  const topics = env.openDB<string, string>({ name: 'topics', encoding: 'string' });
  await env.transaction(() => {
    meta.put('format', JSON.stringify({ store: 'tidewire-state', format: 2 }));
    meta.put('identity', JSON.stringify(identity));
    meta.put('seq', '7');
    topics.put('accounts/1/1', JSON.stringify([3, 'default', SOURCE, { id: 1, branch: 1 }, 7]));
  });
  await env.close();
  const store = await LmdbStateStore.open(dir, { identity });
  assert.equal(store.rowsComplete(SOURCE), false);
  assert.equal(store.get('accounts/1/1')?.version, 3);
  await store.close();
  const check = open({ path: dir, encoding: 'string', maxDbs: 8 });
  assert.equal(JSON.parse(check.openDB<string, string>({ name: 'meta', encoding: 'string' }).get('format')!).format, 3);
  await check.close();
});

test('any row key is stored, kept apart from every other, across a reopen: empty, longer than an LMDB key, binary, or starting with the hash marker', async () => {
  const dir = join(root, `s${++n}`);
  // Kafka record keys are bytes (held as latin1 text); a Postgres key of long text columns can pass LMDB's 1,978 bytes.
  const long = 'k'.repeat(3000);
  const keys = ['', long, long + 'x', '\u0001', '\u0001' + long, Buffer.from([0, 1, 255, 0]).toString('latin1'), 'é'.repeat(1000), '["1"]'];
  let store = await LmdbStateStore.open(dir, { identity, epoch: 'e' });
  await store.commit({ seq: 1, changes: [], rows: keys.map((key, i) => ({ source: SOURCE, key, path: `a/${i}` })) });
  store = await reopen(store, dir);
  assert.deepEqual(keys.map((k) => store.rowPath(SOURCE, k)), keys.map((_, i) => `a/${i}`));
  await store.commit({ seq: 2, changes: [], rows: [{ source: SOURCE, key: long, path: null }] });
  assert.equal(store.rowPath(SOURCE, long), undefined);
  assert.equal(store.rowPath(SOURCE, long + 'x'), 'a/2', 'a key sharing a long prefix keeps its own entry');
  await store.close();
});

async function reopen(store: LmdbStateStore, dir: string): Promise<LmdbStateStore> {
  await store.close();
  return LmdbStateStore.open(dir, { identity });
}

test('marks of several row indexes issued together are all stored: none is lost to another written in the same group', async () => {
  const dir = join(root, `s${++n}`);
  let store = await LmdbStateStore.open(dir, { identity, epoch: 'e' });
  await Promise.all([store.completeRows('postgres:public.a'), store.completeRows('postgres:public.b'), store.resetRows('postgres:public.c', false)]);
  await Promise.all([store.resetRows('postgres:public.a', false), store.completeRows('postgres:public.c')]);
  assert.deepEqual(['a', 'b', 'c'].map((t) => store.rowsComplete(`postgres:public.${t}`)), [false, true, true]);
  await store.close();
  store = await LmdbStateStore.open(dir, { identity });
  assert.deepEqual(['a', 'b', 'c'].map((t) => store.rowsComplete(`postgres:public.${t}`)), [false, true, true], 'as stored');
  await store.close();
});

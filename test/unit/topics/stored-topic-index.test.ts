/**
 * Topic state kept in the durable store (stored-topic-index.ts) on a real LMDB store in a temp dir,
 * checked against the same changes applied to topic state on the heap: the same topics, versions,
 * values and seqs by path and by selector, whatever is durable yet; the heap holds only what is
 * not durable and a bounded cache; a store opened again serves the state without loading it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { matches, parseSelector } from '../../../core/selector.ts';
import type { Topic, TopicUpdate } from '../../../core/topic.ts';
import { LmdbStateStore } from '../../../services/state/index.ts';
import { StateJournal } from '../../../services/state/state-journal.ts';
import { StoredTopicIndex, rangeOf } from '../../../services/topics/stored-topic-index.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';

const root = mkdtempSync(join(tmpdir(), 'tidewire-stored-index-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `s${++n}`);
const src = 'postgres:public.t';

function shape(t: Topic | undefined): unknown {
  // As JSON: a value read back from the store is a plain object, whatever object the mapping made.
  return t === undefined ? undefined : JSON.parse(JSON.stringify({ path: t.path, tenant: t.tenant, source: t.source, version: t.version, value: t.value, seq: t.seq }));
}

function matching(store: TopicStore, selector: string): unknown[] {
  const out: Topic[] = [];
  store.forEachMatching(parseSelector(selector), (t) => out.push(t));
  const sorted = out.map(shape).sort((a, b) => ((a as Topic).path < (b as Topic).path ? -1 : 1));
  // The iterator form (read across turns of the event loop) gives the same topics.
  const iterated = [...store.matching(parseSelector(selector))].map(shape).sort((a, b) => ((a as Topic).path < (b as Topic).path ? -1 : 1));
  assert.deepEqual(iterated, sorted, `matching(${selector}) = forEachMatching`);
  return sorted;
}

async function openStored(dir: string, cacheTopics?: number) {
  const state = await LmdbStateStore.open(dir, { identity: {} });
  const index = new StoredTopicIndex(state, { cacheTopics });
  const store = new TopicStore({ epoch: state.epoch ?? undefined });
  store.useIndex(index);
  if (state.epoch === null) await state.setEpoch(store.epoch);
  else store.restore({ epoch: state.epoch, seq: state.seq, versionFloor: state.versionFloor, removals: state.removals() });
  const journal = new StateJournal(state, { onDurable: (seq) => index.durable(seq) });
  const apply = (updates: TopicUpdate[]) => {
    const batch = store.apply(updates);
    void journal.write(batch);
    return batch;
  };
  return { state, index, store, journal, apply };
}

test('the range of a selector holds every path it can match, and only paths under its literal segments', () => {
  assert.deepEqual(rangeOf(parseSelector('orders/7/**')), ['orders/7/', 'orders/70']);
  assert.deepEqual(rangeOf(parseSelector('orders/*/5')), ['orders/', 'orders0']);
  assert.deepEqual(rangeOf(parseSelector('*/5')), [undefined, undefined]);
  assert.deepEqual(rangeOf(parseSelector('**')), [undefined, undefined]);
});

test('stored topic state equals heap topic state after every batch, durable or not, and across a reopen', async () => {
  const seg = fc.constantFrom('a', 'b', 'a0', 'a.b', '1', '10');
  const path = fc.array(seg, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));
  const update = fc.record({ path, value: fc.option(fc.record({ x: fc.integer({ min: 0, max: 3 }), y: fc.constantFrom('p', 'q') }), { freq: 4 }) });
  const step = fc.oneof(
    { weight: 6, arbitrary: fc.array(update, { minLength: 1, maxLength: 6 }).map((u) => ({ kind: 'batch' as const, u })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  );
  const selectors = ['**', 'a/**', 'a/*', '*/b', 'a0/**', '*/*/1', 'a/b', '1/**', 'a.b/**'];
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
      const dir = freshDir();
      const heap = new TopicStore();
      let s = await openStored(dir, 3);
      try {
        for (const st of steps) {
          if (st.kind === 'flush') {
            await s.journal.flushed();
            assert.equal(s.index.onHeap.pinned, 0, 'nothing pinned once durable');
            assert.ok(s.index.onHeap.cached <= 3, 'the cache is bounded');
            continue;
          }
          const updates: TopicUpdate[] = st.u.map((u) => ({ path: u.path, source: src, value: u.value }));
          const a = heap.apply(updates);
          const b = s.apply(updates);
          assert.equal(b?.changes.length, a?.changes.length);
          assert.deepEqual(b?.changes.map((c) => [c.type, c.version, c.wire]), a?.changes.map((c) => [c.type, c.version, c.wire]));
          assert.equal(s.store.size, heap.size);
          for (const u of updates) assert.deepEqual(shape(s.store.get(u.path)), shape(heap.get(u.path)), u.path);
          for (const sel of selectors) assert.deepEqual(matching(s.store, sel), matching(heap, sel), sel);
        }
        await s.journal.flushed();
        const heapAll = [...heap.all()].map(shape).sort((x, y) => ((x as Topic).path < (y as Topic).path ? -1 : 1));
        await s.state.close();
        // Opened again: the state is the store's, nothing is loaded onto the heap.
        s = await openStored(dir, 3);
        assert.equal(s.index.onHeap.pinned + s.index.onHeap.cached, 0);
        assert.equal(s.store.size, heap.size);
        assert.deepEqual(matching(s.store, '**'), heapAll);
        for (const t of heap.all()) assert.deepEqual(shape(s.store.get(t.path)), shape(t));
      } finally {
        await s.state.close();
      }
    }),
    { numRuns: 60, seed: 12 },
  );
});

test('a topic changed and not yet durable is read from the heap, the store copy once durable', async () => {
  const s = await openStored(freshDir());
  try {
    s.apply([{ path: 'o/1', source: src, value: { n: 1 } }]);
    await s.journal.flushed();
    assert.deepEqual(s.index.onHeap, { pinned: 0, cached: 1 });
    assert.deepEqual(s.state.get('o/1')?.value, { n: 1 });
    s.apply([{ path: 'o/1', source: src, value: { n: 2 } }, { path: 'o/2', source: src, value: { n: 1 } }]);
    // Not durable yet: the store still holds n: 1 and no o/2; topic state says n: 2 and o/2.
    assert.deepEqual(s.state.get('o/1')?.value, { n: 1 });
    assert.equal(s.state.get('o/2'), undefined);
    assert.deepEqual(s.store.get('o/1')?.value, { n: 2 });
    assert.deepEqual(matching(s.store, 'o/*').map((t) => (t as Topic).value), [{ n: 2 }, { n: 1 }]);
    s.apply([{ path: 'o/2', source: src, value: null }]);
    assert.equal(s.store.get('o/2'), undefined);
    assert.deepEqual(matching(s.store, 'o/**').map((t) => (t as Topic).path), ['o/1']);
    await s.journal.flushed();
    assert.deepEqual(s.index.onHeap, { pinned: 0, cached: 1 });
    assert.deepEqual(s.state.get('o/1')?.value, { n: 2 });
    assert.equal(s.state.get('o/2'), undefined);
    assert.equal(s.store.size, 1);
    // The next change of a topic no longer on the heap is diffed against the store's copy.
    const cold = await openStored(freshDir(), 0);
    try {
      const wide = { b: 'x'.repeat(200) };
      cold.apply([{ path: 'k', source: src, value: { a: 1, ...wide } }]);
      await cold.journal.flushed();
      assert.deepEqual(cold.index.onHeap, { pinned: 0, cached: 0 });
      const batch = cold.apply([{ path: 'k', source: src, value: { a: 2, ...wide } }]);
      assert.equal(batch?.changes[0].type, 'delta');
      assert.equal(batch?.changes[0].version, 2);
      assert.deepEqual(batch?.changes[0].type === 'delta' && batch.changes[0].patch, [{ op: 'replace', path: '/a', value: 2 }]);
      await cold.journal.flushed();
      assert.equal(cold.apply([{ path: 'k', source: src, value: { a: 2, ...wide } }]), null, 'an unchanged row changes nothing');
    } finally {
      await cold.state.close();
    }
  } finally {
    await s.state.close();
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SelectorIndex } from '../../../core/selector-index.ts';
import { matches, parseSelector } from '../../../core/selector.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';

const src = 'test:t';

test('first write is a value, later writes are deltas with consecutive versions', () => {
  const store = new TopicStore();
  const b1 = store.apply([{ path: 'orders/1', source: src, value: { id: 1, qty: 2, note: 'a fairly long note that makes deltas worth it' } }])!;
  assert.equal(b1.changes[0].type, 'value');
  assert.equal(b1.changes[0].version, 1);
  const b2 = store.apply([{ path: 'orders/1', source: src, value: { id: 1, qty: 3, note: 'a fairly long note that makes deltas worth it' } }])!;
  assert.equal(b2.changes[0].type, 'delta');
  assert.equal(b2.changes[0].version, 2);
  assert.deepEqual(JSON.parse(b2.changes[0].wire), { type: 'delta', path: 'orders/1', version: 2, patch: [{ op: 'replace', path: '/qty', value: 3 }] });
  assert.ok(b2.seq > b1.seq);
});

test('a delta carries the UTF-8 size of the value it stands for (multibyte text included)', () => {
  const store = new TopicStore();
  const value = { id: 1, qty: 2, note: 'Zürich → 東京, a note long enough to make deltas worth it 🚚' };
  store.apply([{ path: 'orders/1', source: src, value }]);
  const after = { ...value, qty: 3 };
  const c = store.apply([{ path: 'orders/1', source: src, value: after }])!.changes[0];
  assert.equal(c.type, 'delta');
  assert.equal(c.type === 'delta' && c.valueBytes, Buffer.byteLength(JSON.stringify(after)));
});

test('an update that changes nothing produces no batch', () => {
  const store = new TopicStore();
  store.apply([{ path: 'a/1', source: src, value: { id: 1, j: { x: 1 } } }]);
  assert.equal(store.apply([{ path: 'a/1', source: src, value: { j: { x: 1 }, id: 1 } }]), null);
  assert.equal(store.get('a/1')!.version, 1);
});

test('a delta bigger than the value is sent as the value', () => {
  const store = new TopicStore();
  store.apply([{ path: 'a/1', source: src, value: { a: 1, b: 2 } }]);
  const b = store.apply([{ path: 'a/1', source: src, value: { c: 3 } }])!;
  assert.equal(b.changes[0].type, 'value');
  assert.deepEqual(JSON.parse(b.changes[0].wire).value, { c: 3 });
});

test('keep retains cached fields the source did not resend (unchanged TOAST)', () => {
  const store = new TopicStore();
  store.apply([{ path: 'a/1', source: src, value: { id: 1, big: 'x'.repeat(5000), n: 1 } }]);
  const b = store.apply([{ path: 'a/1', source: src, value: { id: 1, n: 2 }, keep: ['big'] }])!;
  assert.equal(b.changes[0].type, 'delta');
  assert.equal(store.get('a/1')!.value.big, 'x'.repeat(5000));
});

test('removal and removeSource', () => {
  const store = new TopicStore();
  store.apply([
    { path: 'a/1', source: 's1', value: { id: 1 } },
    { path: 'a/2', source: 's1', value: { id: 2 } },
    { path: 'b/1', source: 's2', value: { id: 1 } },
  ]);
  const r = store.apply([{ path: 'a/1', source: 's1', value: null }])!;
  assert.deepEqual(JSON.parse(r.changes[0].wire), { type: 'removal', path: 'a/1', version: 2 });
  assert.equal(store.apply([{ path: 'a/1', source: 's1', value: null }]), null, 'removing a missing topic is a no-op');
  const t = store.removeSource('s1')!;
  assert.deepEqual(t.changes.map((c) => c.topic.path), ['a/2']);
  assert.equal(store.size, 1);
});

test('tree walk, selector index and linear matching agree on random paths and selectors', () => {
  const seg = fc.constantFrom('a', 'b', 'c', '1', '2');
  const path = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
  const selector = fc
    .tuple(fc.array(fc.oneof(seg, fc.constant('*')), { minLength: 0, maxLength: 4 }), fc.boolean())
    .filter(([s, d]) => s.length > 0 || d)
    .map(([s, d]) => [...s, ...(d ? ['**'] : [])].join('/'));
  fc.assert(
    fc.property(fc.uniqueArray(path, { maxLength: 30 }), fc.array(selector, { minLength: 1, maxLength: 8 }), (paths, selectors) => {
      const store = new TopicStore();
      store.apply(paths.map((p) => ({ path: p, source: src, value: { p } })));
      const index = new SelectorIndex<string>();
      for (const s of selectors) index.add(parseSelector(s), s);
      for (const s of selectors) {
        const sel = parseSelector(s);
        const viaTree: string[] = [];
        store.forEachMatching(sel, (t) => viaTree.push(t.path));
        assert.deepEqual(viaTree.sort(), paths.filter((p) => matches(sel, p)).sort(), s);
      }
      for (const p of paths) {
        const hits: string[] = [];
        index.match(p.split('/'), (h) => hits.push(h));
        assert.deepEqual(hits.sort(), [...new Set(selectors.filter((s) => matches(parseSelector(s), p)))].sort(), p);
      }
      // Removing every holder empties the index.
      for (const s of selectors) index.remove(parseSelector(s), s);
      assert.equal(index.size, 0);
    }),
    { numRuns: 3000, seed: 7 },
  );
});

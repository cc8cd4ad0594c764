import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyPatch } from '../../../client/json-patch.ts';
import type { JsonObject } from '../../../core/json.ts';
import { diffValues } from '../../../core/delta.ts';
import { composePatches } from '../../../core/patch-compose.ts';
import { TopicHistory } from '../../../services/topics/topic-history.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';

const put = (store: TopicStore, path: string, value: JsonObject | null) => store.apply([{ path, source: 's', value }]);

describe('TopicHistory', () => {
  it('keeps the last perTopic changes of a topic and serves any version they reach', () => {
    const store = new TopicStore({ history: { perTopic: 5 } });
    for (let n = 0; n < 12; n++) put(store, 't', { n });
    const t = store.get('t')!;
    assert.equal(t.version, 12);
    assert.deepEqual(store.changesSince(t, 12), []);
    assert.deepEqual(store.changesSince(t, 7)!.map((p) => p[0]), [7, 8, 9, 10, 11].map((n) => ({ op: 'replace', path: '/n', value: n })));
    assert.equal(store.changesSince(t, 6), null, 'version 6 → 7 is no longer held');
    assert.equal(store.changesSince(t, 13), null, 'a version from the future');
  });

  it('stays within its byte budget, oldest first, over all topics', () => {
    const h = new TopicHistory({ perTopic: 1000, maxBytes: 10_000 });
    const patch = [{ op: 'replace' as const, path: '/x', value: 'y'.repeat(100) }];
    for (let v = 2; v <= 500; v++) for (const path of ['a', 'b']) h.record(path, v, patch, 130);
    assert.ok(h.bytes <= 10_000, String(h.bytes));
    assert.ok(h.size > 40, `holds about ${h.size} changes`);
    assert.equal(h.since('a', 499, 500)!.length, 1);
    assert.equal(h.since('a', 400, 500), null);
  });

  it('appending is O(1) and memory stays bounded when only the per-topic cap bites', () => {
    const h = new TopicHistory({ perTopic: 4, maxBytes: 1 << 30 });
    const patch = [{ op: 'replace' as const, path: '/n', value: 1 }];
    const t0 = performance.now();
    for (let v = 2; v < 400_000; v++) h.record('hot', v, patch, 30);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(h.size, 4);
    assert.ok(h.bytes < 1000);
    assert.ok((h as unknown as { fifo: unknown[] }).fifo.length < 3000, 'dead entries do not pile up');
  });

  it('a topic created again continues its numbering, so (path, version) names one state per epoch', () => {
    const store = new TopicStore({ history: { tombstones: 2 } });
    put(store, 'a', { n: 1 });
    put(store, 'a', { n: 2 });
    const removal = put(store, 'a', null)!.changes[0];
    assert.equal(removal.version, 3);
    const again = put(store, 'a', { n: 1 })!.changes[0];
    assert.equal(again.version, 4, 'continues after the removal');
    assert.equal(again.type, 'value');
    assert.equal(store.changesSince(store.get('a')!, 2), null, 'no history across a removal');
    // Tombstones are bounded; a forgotten one still cannot be reused: new topics start after it.
    for (const p of ['b', 'c', 'd']) {
      put(store, p, { n: 1 });
      put(store, p, null);
    }
    put(store, 'a', null); // a's tombstone (5) is newer; b (2) was forgotten
    assert.equal(put(store, 'b', { n: 1 })!.changes[0].version, 3, 'b continues after its forgotten removal');
    assert.ok(put(store, 'never-seen', { n: 1 })!.changes[0].version >= 1);
    assert.equal(new TopicStore().apply([{ path: 'x', source: 's', value: {} }])!.changes[0].version, 1, 'a brand new path starts at 1');
  });

  it('changes carry the values around them', () => {
    const store = new TopicStore();
    const c1 = put(store, 'a', { n: 1 })!.changes[0];
    const c2 = put(store, 'a', { n: 2 })!.changes[0];
    const c3 = put(store, 'a', null)!.changes[0];
    assert.deepEqual([c1.before, c1.after], [null, { n: 1 }]);
    assert.deepEqual([c2.before, c2.after], [{ n: 1 }, { n: 2 }]);
    assert.deepEqual([c3.before, c3.after], [{ n: 2 }, null]);
  });
});

describe('composePatches', () => {
  it('keeps only the last operation on a column', () => {
    const patches = [
      [{ op: 'replace' as const, path: '/price', value: 1 }],
      [{ op: 'replace' as const, path: '/price', value: 2 }, { op: 'add' as const, path: '/x', value: 1 }],
      [{ op: 'remove' as const, path: '/x' }, { op: 'replace' as const, path: '/price', value: 3 }],
    ];
    assert.deepEqual(composePatches(patches), [{ op: 'replace', path: '/price', value: 3 }]);
  });

  it('applying the composition equals applying each patch in turn (diffValues patches)', () => {
    const scalar = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom('a', 'b'), fc.constant(null));
    const value = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd/e', 'f~g'), fc.oneof(scalar, fc.dictionary(fc.constantFrom('x', 'y'), scalar, { maxKeys: 2 })), { maxKeys: 4 });
    fc.assert(fc.property(fc.array(value, { minLength: 2, maxLength: 8 }), (generated) => {
      const states = generated.map((v) => JSON.parse(JSON.stringify(v)) as JsonObject); // plain prototypes
      const patches = [];
      for (let i = 1; i < states.length; i++) patches.push(diffValues(states[i - 1] as JsonObject, states[i] as JsonObject));
      const composed = composePatches(patches.filter((p) => p.length > 0));
      if (patches.every((p) => p.length === 0)) return true;
      assert.deepEqual(applyPatch(states[0] as JsonObject, composed), states.at(-1));
      return true;
    }), { numRuns: 3000 });
  });
});

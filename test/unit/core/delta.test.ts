import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { JsonObject, JsonValue } from '../../../core/json.ts';
import { type PatchOp, diffValues } from '../../../core/delta.ts';

/** A minimal RFC 6902 apply, independent of the client SDK's, to check the server's patches. */
function apply(doc: JsonObject, ops: PatchOp[]): JsonObject {
  const root = structuredClone(doc) as JsonValue;
  for (const op of ops) {
    const keys = op.path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    let parent = root as Record<string, JsonValue>;
    for (const k of keys) parent = parent[k] as Record<string, JsonValue>;
    assert.ok(parent && typeof parent === 'object' && !Array.isArray(parent), `patch path ${op.path} must address an object member`);
    if (op.op === 'remove') {
      assert.ok(Object.hasOwn(parent, last), `remove of missing ${op.path}`);
      delete parent[last];
    } else {
      if (op.op === 'replace') assert.ok(Object.hasOwn(parent, last), `replace of missing ${op.path}`);
      parent[last] = structuredClone(op.value);
    }
  }
  return root as JsonObject;
}

const key = fc.oneof(fc.constantFrom('a', 'b', 'c', 'x/y', 'x~y', '', '0'), fc.string({ maxLength: 4 }));
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 6 }),
    fc.array(tie('value'), { maxLength: 3 }),
    tie('object'),
  ),
  object: fc.dictionary(key, tie('value'), { maxKeys: 4 }),
}));

test('applying diffValues(a, b) to a always yields b', () => {
  fc.assert(
    fc.property(json.object as fc.Arbitrary<JsonObject>, json.object as fc.Arbitrary<JsonObject>, (a, b) => {
      const patch = diffValues(a, b);
      assert.deepEqual(JSON.parse(JSON.stringify(apply(a, patch))), JSON.parse(JSON.stringify(b)));
      if (JSON.stringify(a) === JSON.stringify(b)) assert.equal(patch.length, 0);
    }),
    { numRuns: 20000, seed: 424242 },
  );
});

test('equal values give an empty patch, whatever the key order or nesting', () => {
  assert.deepEqual(diffValues({ a: 1, j: { x: [1, { y: 2 }] } }, { j: { x: [1, { y: 2 }] }, a: 1 }), []);
});

test('a one-field change is one small replace, nested changes stay nested', () => {
  assert.deepEqual(diffValues({ id: 1, qty: 2, note: 'x' }, { id: 1, qty: 3, note: 'x' }), [{ op: 'replace', path: '/qty', value: 3 }]);
  assert.deepEqual(diffValues({ j: { deep: { a: 1, b: 2 } } }, { j: { deep: { a: 1, b: 3 } } }), [{ op: 'replace', path: '/j/deep/b', value: 3 }]);
  assert.deepEqual(diffValues({ a: [1, 2] }, { a: [1, 2, 3] }), [{ op: 'replace', path: '/a', value: [1, 2, 3] }]);
});

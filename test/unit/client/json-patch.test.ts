import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { JsonPatchError, applyPatch, parsePointer } from '../../../client/json-patch.ts';
import type { PatchOperation } from '../../../core/messages.ts';
import type { JsonObject, JsonValue } from '../../../core/json.ts';
import { diffValues } from '../../../core/delta.ts';

describe('parsePointer', () => {
  it('splits and unescapes ~1 before ~0 (RFC 6901 §4)', () => {
    assert.deepEqual(parsePointer(''), []);
    assert.deepEqual(parsePointer('/'), ['']);
    assert.deepEqual(parsePointer('/a~1b/m~0n'), ['a/b', 'm~n']);
    assert.deepEqual(parsePointer('/~01'), ['~1']);
  });

  it('refuses pointers without a leading slash and bad escapes', () => {
    assert.throws(() => parsePointer('a'), JsonPatchError);
    assert.throws(() => parsePointer('/a~2'), JsonPatchError);
    assert.throws(() => parsePointer('/a~'), JsonPatchError);
  });
});

describe('applyPatch', () => {
  const doc: JsonValue = { a: 1, o: { x: [1, 2, 3], 'k/~': true }, arr: ['p', 'q'] };

  it('add/replace/remove on objects, leaving the input untouched', () => {
    const before = structuredClone(doc);
    const out = applyPatch(doc, [
      { op: 'add', path: '/b', value: { deep: null } },
      { op: 'replace', path: '/a', value: 'one' },
      { op: 'remove', path: '/o/k~1~0' },
      { op: 'add', path: '/o/x', value: 'overwritten by add' },
    ]);
    assert.deepEqual(out, { a: 'one', b: { deep: null }, o: { x: 'overwritten by add' }, arr: ['p', 'q'] });
    assert.deepEqual(doc, before);
  });

  it('shares untouched branches with the input', () => {
    const out = applyPatch(doc, [{ op: 'replace', path: '/a', value: 2 }]) as { o: unknown; arr: unknown };
    assert.equal(out.o, (doc as { o: unknown }).o);
  });

  it('arrays: insert at index, append with -, replace, remove', () => {
    assert.deepEqual(applyPatch(['a', 'c'], [{ op: 'add', path: '/1', value: 'b' }]), ['a', 'b', 'c']);
    assert.deepEqual(applyPatch(['a'], [{ op: 'add', path: '/-', value: 'b' }]), ['a', 'b']);
    assert.deepEqual(applyPatch(['a'], [{ op: 'add', path: '/1', value: 'b' }]), ['a', 'b']);
    assert.deepEqual(applyPatch(['a', 'b'], [{ op: 'replace', path: '/0', value: 'z' }]), ['z', 'b']);
    assert.deepEqual(applyPatch(['a', 'b', 'c'], [{ op: 'remove', path: '/1' }]), ['a', 'c']);
    assert.deepEqual(applyPatch({ o: { x: [1, 2] } }, [{ op: 'remove', path: '/o/x/0' }]), { o: { x: [2] } });
  });

  it('the empty path replaces the whole document', () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'replace', path: '', value: { b: 2 } }]), { b: 2 });
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'add', path: '', value: [1] }]), [1]);
  });

  it('keeps __proto__ as an own member and never touches a prototype', () => {
    const out = applyPatch({}, [{ op: 'add', path: '/__proto__', value: { polluted: true } }]) as Record<string, unknown>;
    assert.ok(Object.hasOwn(out, '__proto__'));
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  const invalid: Array<[string, JsonValue, PatchOperation[] | unknown]> = [
    ['remove of a missing member', { a: 1 }, [{ op: 'remove', path: '/b' }]],
    ['replace of a missing member', { a: 1 }, [{ op: 'replace', path: '/b', value: 1 }]],
    ['add below a missing member', { a: 1 }, [{ op: 'add', path: '/b/c', value: 1 }]],
    ['a path through a number', { a: 1 }, [{ op: 'add', path: '/a/b', value: 1 }]],
    ['a path through null', { a: null }, [{ op: 'add', path: '/a/b', value: 1 }]],
    ['an index past the end', ['a'], [{ op: 'add', path: '/2', value: 1 }]],
    ['replace at the end', ['a'], [{ op: 'replace', path: '/1', value: 1 }]],
    ['remove with -', ['a'], [{ op: 'remove', path: '/-' }]],
    ['a leading zero index', ['a', 'b'], [{ op: 'replace', path: '/01', value: 1 }]],
    ['a negative index', ['a'], [{ op: 'remove', path: '/-1' }]],
    ['a non-numeric index', ['a'], [{ op: 'remove', path: '/x' }]],
    ['removing the document', { a: 1 }, [{ op: 'remove', path: '' }]],
    ['an unsupported op', { a: 1 }, [{ op: 'move', from: '/a', path: '/b' }]],
    ['add without value', { a: 1 }, [{ op: 'add', path: '/b' }]],
    ['a path without leading slash', { a: 1 }, [{ op: 'add', path: 'b', value: 1 }]],
    ['an operation that is not an object', { a: 1 }, [null]],
    ['a patch that is not an array', { a: 1 }, { op: 'add' }],
  ];
  for (const [name, input, ops] of invalid) {
    it(`throws JsonPatchError for ${name}`, () => {
      assert.throws(() => applyPatch(input, ops as PatchOperation[]), JsonPatchError);
    });
  }

  it('a failing operation leaves the input untouched', () => {
    const input = { a: { b: 1 } };
    assert.throws(() => applyPatch(input, [{ op: 'replace', path: '/a/b', value: 2 }, { op: 'remove', path: '/zzz' }]));
    assert.deepEqual(input, { a: { b: 1 } });
  });
});

describe('applyPatch(a, diffValues(a, b)) = b (checks the server diff too)', () => {
  /** JSON text with sorted keys: equal for equal JSON, whatever the key order or prototype. */
  const canonical = (v: JsonValue): string => JSON.stringify(sortKeys(v));
  function sortKeys(v: JsonValue): unknown {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (typeof v !== 'object' || v === null) return v;
    return { object: Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]) };
  }
  const key = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('a', 'b', 'c', 'a/b', '~0', '~', '', '__proto__', '0', '-'));
  const value = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>;
  const object = (depth: number): fc.Arbitrary<JsonObject> =>
    fc.dictionary(key, depth > 0 ? fc.oneof(value, object(depth - 1)) : value, { maxKeys: 6 }) as fc.Arbitrary<JsonObject>;

  /** b as a mutation of a: members kept, dropped, replaced, added, nested objects mutated in turn. */
  function mutated(a: JsonValue, depth: number): fc.Arbitrary<JsonValue> {
    if (typeof a !== 'object' || a === null || Array.isArray(a) || depth === 0) return fc.oneof(fc.constant(a), value);
    const keys = Object.keys(a);
    const choices = keys.map((k) =>
      fc.oneof(fc.constant({ keep: true as const }), fc.constant({ drop: true as const }), value.map((v) => ({ set: v })), mutated(a[k], depth - 1).map((v) => ({ set: v }))),
    );
    return fc.tuple(fc.tuple(...choices), object(1)).map(([decided, added]) => {
      const out: JsonObject = {};
      keys.forEach((k, i) => {
        const d = decided[i] as { keep?: true; drop?: true; set?: JsonValue };
        if (d.keep) Object.defineProperty(out, k, { value: a[k], enumerable: true, writable: true, configurable: true });
        else if (!d.drop) Object.defineProperty(out, k, { value: d.set, enumerable: true, writable: true, configurable: true });
      });
      for (const k of Object.keys(added)) Object.defineProperty(out, k, { value: added[k], enumerable: true, writable: true, configurable: true });
      return out;
    });
  }

  it('for independent random objects', () => {
    fc.assert(
      fc.property(object(2), object(2), (a, b) => {
        assert.equal(canonical(applyPatch(a, diffValues(a, b))), canonical(b));
      }),
      { numRuns: 500 },
    );
  });

  it('for b derived from a (nested changes, shared structure)', () => {
    fc.assert(
      fc.property(
        object(3).chain((a) => fc.tuple(fc.constant(a), mutated(a, 3) as fc.Arbitrary<JsonObject>)),
        ([a, b]) => {
          assert.equal(canonical(applyPatch(a, diffValues(a, b))), canonical(b));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

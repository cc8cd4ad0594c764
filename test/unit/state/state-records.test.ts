/**
 * A topic read from the store (state-records.ts LazyStoredTopic) decodes as far as it is read:
 * whatever the tenant, source, value and seq, its fields equal a full decode of the record and
 * `valueJson` is the value's text as encoded (and written as is when given); changed in place it drops the stored text; a
 * record cut anywhere is reported as corrupt where it is read, never read as another topic.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LazyStoredTopic, encodeTopic, encodedBound, writeTopic } from '../../../services/state/state-records.ts';
import type { StoredTopic } from '../../../services/state/state-store.ts';
import { fields } from '../../support/stored-topic.ts';

class Corrupt extends Error {}
const corrupt = (path: string) => new Corrupt(`corrupt: ${path}`);

// Strings that stress the head scan: quotes, backslashes, commas, brackets, braces, non-ASCII.
const awkward = fc.string({ unit: fc.constantFrom('a', '"', '\\', ',', '[', ']', '{', '}', 'é', '\u2028', '\n', '0') });
const topic = fc.record(
  {
    path: fc.constant('p/1'),
    tenant: fc.oneof(fc.constant('default'), awkward),
    source: fc.oneof(fc.constant('postgres:public.t'), awkward),
    version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    value: fc.dictionary(awkward, fc.jsonValue()),
    seq: fc.option(fc.nat(), { nil: undefined }),
  },
  { requiredKeys: ['path', 'tenant', 'source', 'version', 'value'] },
) as fc.Arbitrary<StoredTopic>;

test('a lazily read topic equals its full decode, and valueJson is the value as encoded', () => {
  fc.assert(
    fc.property(topic, (t) => {
      const text = encodeTopic(t);
      assert.equal(text, JSON.stringify(t.seq === undefined ? [t.version, t.tenant, t.source, t.value] : [t.version, t.tenant, t.source, t.value, t.seq]), 'the record is the JSON array');
      assert.equal(encodeTopic({ ...t, valueJson: JSON.stringify(t.value) }), text, 'the value text given is written as encoding would');
      // The bytes the store puts: the same record, written into a buffer piece by piece.
      const small = Buffer.alloc(8);
      const room = Buffer.alloc(encodedBound(text.length));
      assert.ok(writeTopic(t, JSON.stringify(t.value), small) === -1 || text.length <= 8, 'a buffer that may be too small is refused, not overrun');
      assert.equal(room.subarray(0, writeTopic(t, JSON.stringify(t.value), room)).toString('utf8'), text);
      const lazy = new LazyStoredTopic(t.path, text, corrupt);
      assert.equal(lazy.valueJson, JSON.stringify(JSON.parse(JSON.stringify(t.value))));
      // The oracle: the record parsed whole.
      const [version, tenant, source, value, seq] = JSON.parse(text) as [number, string, string, StoredTopic['value'], number?];
      assert.deepEqual(fields(lazy), fields({ path: t.path, tenant, source, version, value, seq }));
    }),
    { numRuns: 2000 },
  );
});

test('changed in place, a read topic keeps its head and drops its stored text', () => {
  const lazy = new LazyStoredTopic('p/1', encodeTopic({ path: 'p/1', tenant: 't', source: 's', version: 3, value: { n: 1 }, seq: 7 }), corrupt);
  lazy.value = { n: 2 };
  lazy.version++;
  lazy.seq = 8;
  assert.equal(lazy.valueJson, undefined, 'the stored text is no longer its value');
  assert.deepEqual(fields(lazy), { path: 'p/1', tenant: 't', source: 's', version: 4, value: { n: 2 }, seq: 8 });
});

test('a record cut short anywhere is corrupt where it is read', () => {
  fc.assert(
    fc.property(topic, fc.nat(), (t, at) => {
      const text = encodeTopic(t);
      const cut = text.slice(0, at % text.length);
      const lazy = new LazyStoredTopic(t.path, cut, corrupt);
      assert.throws(() => {
        lazy.checked();
        void lazy.value;
      }, Corrupt);
    }),
    { numRuns: 2000 },
  );
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { JsonObject } from '../../../core/json.ts';
import type { ChangeBatch, TopicUpdate } from '../../../core/topic.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import type { ReplicatedBatch } from '../../../services/topics/replicated-batch.ts';
import { HandoffError } from '../../../services/handoff/handoff-error.ts';
import { BatchAssembler, DEFAULT_MAX_RECORD_BYTES, decodeRecord, encodeBatch, type LogPart } from '../../../services/handoff/log-record.ts';
import { plainBatch, plainView } from '../../support/change-batches.ts';

const src = 'postgres:public.orders';
const note = 'a note long enough that changing one small field is sent as a delta';

/** Decodes and joins records as an edge reads them; the batches completed, in order. */
function readBack(records: readonly Buffer[]): ReplicatedBatch[] {
  const assembler = new BatchAssembler();
  const out: ReplicatedBatch[] = [];
  for (const r of records) {
    const b = assembler.add(decodeRecord(r));
    if (b) out.push(b);
  }
  assert.equal(assembler.pending, false, 'no batch is left half read');
  return out;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HandoffError, `a HandoffError, not ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a HandoffError');
}

test('a value, a delta and a removal are carried with epoch, seq, tenant, source and version', () => {
  const store = new TopicStore({ epoch: 'e1' });
  store.apply([{ path: 'orders/1', source: src, tenant: 'acme', value: { id: 1, qty: 2, note } }]);
  const batch = store.apply([
    { path: 'orders/1', source: src, value: { id: 1, qty: 3, note } },
    { path: 'orders/2', source: src, tenant: 'acme', value: { id: 2 } },
    { path: 'orders/1', source: src, value: null },
  ])!;
  const records = encodeBatch(batch);
  assert.equal(records.length, 1);
  const part = decodeRecord(records[0]);
  assert.deepEqual(part, {
    epoch: 'e1',
    seq: 2,
    part: 1,
    parts: 1,
    changes: [
      { type: 'delta', path: 'orders/1', tenant: 'acme', source: src, version: 2, patch: [{ op: 'replace', path: '/qty', value: 3 }] },
      { type: 'value', path: 'orders/2', tenant: 'acme', source: src, version: 1, value: { id: 2 }, created: true },
      { type: 'removal', path: 'orders/1', tenant: 'acme', source: src, version: 3 },
    ],
  });
  assert.equal(JSON.parse(records[0].toString()).v, 1, 'the format version is in every record');
});

test('a value that replaces an existing one is marked as not a creation', () => {
  const store = new TopicStore({ epoch: 'e1' });
  store.apply([{ path: 'a', source: src, value: { x: 1 } }]);
  const [c] = decodeRecord(encodeBatch(store.apply([{ path: 'a', source: src, value: { y: 2 } }])!)[0]).changes;
  assert.deepEqual(c, { type: 'value', path: 'a', tenant: 'default', source: src, version: 2, value: { y: 2 }, created: false });
});

test('a batch over the byte limit is split between changes into parts of one seq, each under the limit', () => {
  const store = new TopicStore({ epoch: 'e1' });
  const updates: TopicUpdate[] = [];
  for (let i = 0; i < 300; i++) updates.push({ path: `orders/${i}`, source: src, value: { id: i, note: `${note} ${'x'.repeat(i)}` } });
  const batch = store.apply(updates)!;
  const limit = 4096;
  const records = encodeBatch(batch, limit);
  assert.ok(records.length > 10, `${records.length} parts`);
  const parts = records.map((r) => decodeRecord(r));
  records.forEach((r, i) => {
    assert.ok(r.length <= limit, `part ${i + 1} is ${r.length} bytes`);
    assert.deepEqual([parts[i].seq, parts[i].part, parts[i].parts], [batch.seq, i + 1, records.length]);
  });
  const assembler = new BatchAssembler();
  for (const p of parts.slice(0, -1)) assert.equal(assembler.add(p), null, 'nothing comes out before the last part');
  const whole = assembler.add(parts.at(-1)!)!;
  assert.equal(whole.seq, batch.seq);
  assert.deepEqual(whole.changes.map((c) => c.path), updates.map((u) => u.path));
});

test('the source position and the row index writes a batch came from are carried: rows split over the parts like changes, the position on the last part', () => {
  const store = new TopicStore({ epoch: 'e1' });
  const updates: TopicUpdate[] = [];
  const rows = [];
  for (let i = 0; i < 200; i++) {
    updates.push({ path: `orders/${i}`, source: src, value: { id: i, note } });
    rows.push({ source: src, key: `${i}\u0000"é`, path: i % 7 === 0 ? null : `orders/${i}` });
  }
  const batch = store.apply(updates)!;
  const position = { name: 'postgres', position: '0/16B3748' };
  const records = encodeBatch(batch, 4096, { position, rows });
  assert.ok(records.length > 5, `${records.length} parts`);
  records.forEach((r, i) => assert.ok(r.length <= 4096, `part ${i + 1} is ${r.length} bytes`));
  const parts = records.map((r) => decodeRecord(r));
  assert.deepEqual(parts.map((p) => p.position !== undefined), parts.map((_, i) => i === parts.length - 1), 'only the last part has the position');
  const [whole] = readBack(records) as Array<ReplicatedBatch & { position?: unknown; rows?: unknown }>;
  assert.deepEqual(whole.position, position);
  assert.deepEqual(whole.rows, rows);
  assert.equal(whole.changes.length, 200);
  // A batch without them reads back without them.
  const plain = decodeRecord(encodeBatch(store.apply([{ path: 'x', source: src, value: { a: 1 } }])!)[0]);
  assert.equal('rows' in plain || 'position' in plain, false);
});

test('a record whose rows or position are malformed is refused', () => {
  const head = '{"v":1,"epoch":"e1","seq":1,"part":1,"parts":1,"changes":[]';
  for (const bad of [',"rows":{}}', ',"rows":[["s","k"]]}', ',"rows":[["s",1,null]]}', ',"position":"0/1"}', ',"position":{"name":"","position":"1"}}']) {
    assert.equal(code(() => decodeRecord(Buffer.from(head + bad))), 'HANDOFF_RECORD_INVALID', bad);
  }
  assert.equal(code(() => decodeRecord(Buffer.from('{"v":1,"epoch":"e1","seq":1,"part":1,"parts":2,"changes":[],"position":{"name":"p","position":"1"}}'))), 'HANDOFF_RECORD_INVALID', 'a position before the last part');
});

test('the default limit stays well under Kafka\'s 1 MB message.max.bytes', () => {
  assert.ok(DEFAULT_MAX_RECORD_BYTES <= 1_048_588 / 2);
});

test('one change larger than the limit is refused with what to raise', () => {
  const store = new TopicStore({ epoch: 'e1' });
  const batch = store.apply([{ path: 'big', source: src, value: { blob: 'x'.repeat(5000) } }])!;
  assert.equal(code(() => encodeBatch(batch, 4096)), 'HANDOFF_CHANGE_TOO_LARGE');
  assert.throws(() => encodeBatch(batch, 4096), /"big".*raise the hand-off record limit/);
});

test('what is not a hand-off record this node reads is refused, never decoded into changes', () => {
  const good = JSON.parse(encodeBatch(new TopicStore({ epoch: 'e' }).apply([{ path: 'a', source: src, value: { x: 1 } }])!)[0].toString());
  const change = good.changes[0];
  const bad = (patch: object) => JSON.stringify({ ...good, ...patch });
  const cases: Array<[string, Buffer | string | null, string]> = [
    ['a tombstone', null, 'HANDOFF_RECORD_INVALID'],
    ['not JSON', Buffer.from('{"v":1,'), 'HANDOFF_RECORD_INVALID'],
    ['a JSON array', '[1]', 'HANDOFF_RECORD_INVALID'],
    ['a foreign record without "v"', JSON.stringify({ id: 7, qty: 2 }), 'HANDOFF_RECORD_INVALID'],
    ['a newer format', bad({ v: 2 }), 'HANDOFF_RECORD_VERSION'],
    ['an empty epoch', bad({ epoch: '' }), 'HANDOFF_RECORD_INVALID'],
    ['seq 0', bad({ seq: 0 }), 'HANDOFF_RECORD_INVALID'],
    ['a fractional seq', bad({ seq: 1.5 }), 'HANDOFF_RECORD_INVALID'],
    ['part 3 of 2', bad({ part: 3, parts: 2 }), 'HANDOFF_RECORD_INVALID'],
    ['changes that are not an array', bad({ changes: {} }), 'HANDOFF_RECORD_INVALID'],
    ['an unknown change type', bad({ changes: [{ ...change, type: 'upsert' }] }), 'HANDOFF_RECORD_INVALID'],
    ['a value that is not an object', bad({ changes: [{ ...change, value: [1] }] }), 'HANDOFF_RECORD_INVALID'],
    ['a value without "created"', bad({ changes: [{ ...change, created: undefined }] }), 'HANDOFF_RECORD_INVALID'],
    ['a version 0', bad({ changes: [{ ...change, version: 0 }] }), 'HANDOFF_RECORD_INVALID'],
    ['an empty path', bad({ changes: [{ ...change, path: '' }] }), 'HANDOFF_RECORD_INVALID'],
    ['no tenant', bad({ changes: [{ ...change, tenant: undefined }] }), 'HANDOFF_RECORD_INVALID'],
    ['a delta without a patch', bad({ changes: [{ ...change, type: 'delta', value: undefined }] }), 'HANDOFF_RECORD_INVALID'],
    ['a patch op "move"', bad({ changes: [{ ...change, type: 'delta', patch: [{ op: 'move', from: '/a', path: '/b' }] }] }), 'HANDOFF_RECORD_INVALID'],
    ['an add without a value', bad({ changes: [{ ...change, type: 'delta', patch: [{ op: 'add', path: '/b' }] }] }), 'HANDOFF_RECORD_INVALID'],
  ];
  for (const [what, value, expected] of cases) assert.equal(code(() => decodeRecord(value)), expected, what);
  assert.throws(() => decodeRecord(bad({ v: 2 })), /format 2, this node reads format 1: run the same tidewire version/);
  assert.throws(() => decodeRecord('{"id":7}'), /must be written by tidewire's ingest node alone/);
});

test('parts out of order are refused: one missing, a batch read from its second part, another batch in between', () => {
  const part = (seq: number, n: number, of: number): LogPart => ({ epoch: 'e', seq, part: n, parts: of, changes: [] });
  assert.equal(code(() => new BatchAssembler().add(part(1, 2, 3))), 'HANDOFF_PART_ORDER');
  const a = new BatchAssembler();
  a.add(part(1, 1, 3));
  assert.equal(code(() => a.add(part(1, 3, 3))), 'HANDOFF_PART_ORDER');
  const b = new BatchAssembler();
  b.add(part(1, 1, 2));
  assert.equal(code(() => b.add(part(2, 1, 1))), 'HANDOFF_PART_ORDER');
  const c = new BatchAssembler();
  c.add(part(1, 1, 2));
  assert.equal(code(() => c.add({ ...part(1, 2, 2), epoch: 'other' })), 'HANDOFF_PART_ORDER');
});

// ---------------------------------------------------------------------------
// Property: what an edge rebuilds from the records is what the ingest node emitted.

const keyArb = fc.constantFrom('a', 'b', 'c', 'nested/d', 'x%2Fy');
const valueArb: fc.Arbitrary<JsonObject> = fc.record(
  {
    id: fc.integer({ min: 0, max: 3 }),
    qty: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null)),
    text: fc.string({ unit: 'grapheme', maxLength: 40 }),
    note: fc.constantFrom(note, `${note}!`),
    doc: fc.dictionary(fc.constantFrom('k', '~', '/', '__proto__', '1', 'é'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 }),
    tags: fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }),
  },
  { requiredKeys: ['id'] },
  // As a source gives values: parsed JSON (plain prototypes; -0 is the one number JSON text does not keep).
).map((v) => JSON.parse(JSON.stringify(v)) as JsonObject);
const updateArb: fc.Arbitrary<TopicUpdate> = fc.record({
  path: keyArb,
  tenant: fc.constantFrom('t1', 't2'),
  value: fc.option(valueArb, { freq: 4, nil: null }),
}).map((u) => ({ ...u, source: src }));

test('property: decode(encode(batch)) gives every change back, and a replica emits the same batches and holds the same state', () => {
  let split = 0;
  fc.assert(
    fc.property(fc.array(fc.array(updateArb, { minLength: 1, maxLength: 24 }), { minLength: 1, maxLength: 25 }), // Limits small enough to split most batches, large enough for any one change generated here.
    fc.integer({ min: 3072, max: 6144 }), (txs, limit) => {
      const ingest = new TopicStore({ epoch: 'prop' });
      const edge = new TopicStore();
      for (const updates of txs) {
        let batch: ChangeBatch | null;
        try {
          batch = ingest.apply(updates);
        } catch {
          return; // not this property's business (e.g. a tenant change of a topic)
        }
        if (!batch) continue;
        const records = encodeBatch(batch, limit);
        if (records.length > 1) split++;
        const [read] = readBack(records);
        assert.deepEqual(
          read.changes,
          batch.changes.map((c) => {
            const head = { type: c.type, path: c.topic.path, tenant: c.topic.tenant, source: c.topic.source, version: c.version };
            if (c.type === 'value') return { ...head, value: c.after, created: c.before === null };
            if (c.type === 'delta') return { ...head, patch: c.patch };
            return head;
          }),
        );
        assert.deepEqual(plainBatch(edge.replicate(read)), plainBatch(batch));
        assert.deepEqual(plainView(edge), plainView(ingest));
      }
    }),
    { numRuns: 300, includeErrorInReport: true },
  );
  assert.ok(split > 20, `only ${split} batches were split into parts`);
});

test('a transaction applied in parts: every batch but its last says it continues, an empty closing batch is carried, and the edge replicates both', () => {
  const store = new TopicStore({ epoch: 'e1' });
  const part1: ChangeBatch = { ...store.apply([{ path: 'acct/1', source: src, value: { bal: 1 } }])!, continues: true };
  const closing = store.emptyBatch();
  const records = [...encodeBatch(part1), ...encodeBatch(closing)];
  assert.equal(encodeBatch(closing).length, 1, 'a batch with no change is one record');
  const read = readBack(records);
  assert.deepEqual(read.map((b) => [b.seq, b.continues === true, b.changes.length]), [[1, true, 1], [2, false, 0]]);
  const edge = new TopicStore({ epoch: 'other' });
  const out = read.map((b) => edge.replicate(b));
  assert.deepEqual(out.map((b) => [b.seq, b.continues === true, b.changes.length]), [[1, true, 1], [2, false, 0]], 'the edge hands distribution the same marks');
  assert.equal(code(() => decodeRecord(Buffer.from(JSON.stringify({ v: 1, epoch: 'e1', seq: 3, part: 1, parts: 1, continues: 'yes', changes: [] })))), 'HANDOFF_RECORD_INVALID');
});

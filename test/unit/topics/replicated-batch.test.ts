import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ReplicatedBatch, type ReplicatedChange, ReplicaError } from '../../../services/topics/replicated-batch.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { plainBatch, plainView } from '../../support/change-batches.ts';

const src = 'postgres:public.accounts';
const note = 'a note long enough that changing one small field is sent as a delta';
const head = { tenant: 'default', source: src };

function batch(seq: number, changes: ReplicatedChange[], epoch = 'e1'): ReplicatedBatch {
  return { epoch, seq, changes };
}
const create = (path: string, version: number, value: object): ReplicatedChange => ({ type: 'value', path, ...head, version, value: value as never, created: true });
const delta = (path: string, version: number, patch: object[]): ReplicatedChange => ({ type: 'delta', path, ...head, version, patch: patch as never });
const removal = (path: string, version: number): ReplicatedChange => ({ type: 'removal', path, ...head, version });

function replica(): TopicStore {
  const r = new TopicStore();
  r.replicate(batch(1, [create('a/1', 1, { id: 1, n: 1, note }), create('a/2', 1, { id: 2, n: 1, note })]));
  return r;
}

function refused(r: TopicStore, b: ReplicatedBatch): string {
  const before = plainView(r);
  try {
    r.replicate(b);
  } catch (err) {
    assert.ok(err instanceof ReplicaError, String(err));
    assert.deepEqual(plainView(r), before, 'nothing of a refused batch is applied');
    return err.code;
  }
  assert.fail('the batch was applied');
}

test('a replica takes the epoch, seq and versions it is given, and writes the wire text the ingest node did', () => {
  const ingest = new TopicStore({ epoch: 'e1' });
  const r = new TopicStore();
  const b1 = ingest.apply([{ path: 'a/1', source: src, value: { id: 1, n: 1, note } }])!;
  const b2 = ingest.apply([{ path: 'a/1', source: src, value: { id: 1, n: 2, note } }])!;
  const b3 = ingest.apply([{ path: 'a/1', source: src, value: null }])!;
  const b4 = ingest.apply([{ path: 'a/1', source: src, value: { id: 1, n: 9 } }])!;
  const replicated = [
    r.replicate(batch(b1.seq, [create('a/1', 1, { id: 1, n: 1, note })])),
    r.replicate(batch(b2.seq, [delta('a/1', 2, [{ op: 'replace', path: '/n', value: 2 }])])),
    r.replicate(batch(b3.seq, [removal('a/1', 3)])),
    r.replicate(batch(b4.seq, [create('a/1', 4, { id: 1, n: 9 })])),
  ];
  assert.deepEqual(replicated.map(plainBatch), [b1, b2, b3, b4].map(plainBatch));
  assert.deepEqual(plainView(r), plainView(ingest));
  assert.equal(r.removedVersion('a/1'), undefined, 'the tombstone is gone once the path is created again, as on the ingest node');
  const t = r.get('a/1')!;
  assert.deepEqual(r.changesSince(t, 4), []);
  assert.deepEqual([...r.removalsSince(0)!], [...ingest.removalsSince(0)!]);
});

test('a resume on the replica is answered from the same history as on the ingest node', () => {
  const ingest = new TopicStore({ epoch: 'e1' });
  const r = new TopicStore();
  const v1 = { id: 1, n: 1, note };
  const v2 = { id: 2, other: 'a value replaced whole' };
  r.replicate(batch(ingest.apply([{ path: 'a', source: src, value: v1 }])!.seq, [create('a', 1, v1)]));
  const b = ingest.apply([{ path: 'a', source: src, value: v2 }])!;
  assert.equal(b.changes[0].type, 'value');
  r.replicate(batch(b.seq, [{ type: 'value', path: 'a', ...head, version: 2, value: v2, created: false }]));
  assert.deepEqual(r.changesSince(r.get('a')!, 1), ingest.changesSince(ingest.get('a')!, 1));
  assert.equal(r.versionAt(r.get('a')!, 1), ingest.versionAt(ingest.get('a')!, 1));
});

test('one transaction changing a row twice is taken as one batch', () => {
  const r = replica();
  const out = r.replicate(batch(2, [delta('a/1', 2, [{ op: 'replace', path: '/n', value: 2 }]), delta('a/1', 3, [{ op: 'replace', path: '/n', value: 3 }]), removal('a/1', 4), create('a/1', 5, { id: 1 })]));
  assert.deepEqual(out.changes.map((c) => [c.type, c.version]), [['delta', 2], ['delta', 3], ['removal', 4], ['value', 5]]);
  assert.equal(r.get('a/1')!.version, 5);
});

test('a gap is refused and nothing of the batch applied: a delta on another base, a change of a topic not held, a creation of one held', () => {
  const cases: Array<[string, ReplicatedChange[], string]> = [
    ['a delta whose base is not held', [delta('a/1', 3, [{ op: 'replace', path: '/n', value: 3 }])], 'REPLICA_GAP'],
    ['the first change fits, the second does not', [delta('a/2', 2, [{ op: 'replace', path: '/n', value: 2 }]), delta('a/1', 5, [{ op: 'replace', path: '/n', value: 5 }])], 'REPLICA_GAP'],
    ['a delta of a topic not held', [delta('b/1', 2, [{ op: 'replace', path: '/n', value: 2 }])], 'REPLICA_GAP'],
    ['a removal of a topic not held', [removal('b/1', 2)], 'REPLICA_GAP'],
    ['a removal at a version that does not follow', [removal('a/1', 5)], 'REPLICA_GAP'],
    ['an update sent whole of a topic not held', [{ type: 'value', path: 'b/1', ...head, version: 4, value: { x: 1 }, created: false }], 'REPLICA_GAP'],
    ['a creation of a topic held', [create('a/1', 2, { x: 1 })], 'REPLICA_GAP'],
    ['a creation at a version its removal used', [removal('a/1', 2), create('a/1', 2, { x: 1 })], 'REPLICA_GAP'],
    ['a patch that does not apply', [delta('a/1', 2, [{ op: 'remove', path: '/missing' }])], 'REPLICA_DIVERGED'],
    ['another tenant', [{ ...delta('a/1', 2, [{ op: 'replace', path: '/n', value: 2 }]), tenant: 'other' }], 'REPLICA_DIVERGED'],
    ['a value equal to the one held', [{ type: 'value', path: 'a/1', ...head, version: 2, value: { id: 1, n: 1, note }, created: false }], 'REPLICA_DIVERGED'],
  ];
  for (const [what, changes, code] of cases) assert.equal(refused(replica(), batch(2, changes)), code, what);
});

test('a batch of another epoch, or not after the position, is refused', () => {
  assert.equal(refused(replica(), batch(2, [removal('a/1', 2)], 'e2')), 'REPLICA_EPOCH');
  assert.equal(refused(replica(), batch(1, [removal('a/1', 2)])), 'REPLICA_ORDER');
  const r = replica();
  r.replicate(batch(10_000_005, [removal('a/1', 2)]));
  assert.equal(r.position, 10_000_005, 'a seq may jump (a restored ingest node numbers after a gap)');
});

test('a store numbers its own changes or replicates another\'s, never both', () => {
  const own = new TopicStore();
  own.apply([{ path: 'a', source: src, value: { x: 1 } }]);
  assert.throws(() => own.replicate(batch(2, [removal('a', 2)])), (e: ReplicaError) => e.code === 'REPLICA_MIXED');
  const r = replica();
  assert.throws(() => r.apply([{ path: 'x', source: src, value: { x: 1 } }]), (e: ReplicaError) => e.code === 'REPLICA_MIXED');
  assert.throws(() => r.removeSource(src), (e: ReplicaError) => e.code === 'REPLICA_MIXED');
});

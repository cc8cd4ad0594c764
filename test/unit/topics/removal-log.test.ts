/**
 * The removal log and the per-topic seq that resumes from a position are answered from
 * (docs/PROTOCOL.md, "Resuming"): removals after a seq, a floor below which the log does not
 * reach, and the version a topic had at a seq.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RemovalLog } from '../../../services/topics/removal-log.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';

describe('RemovalLog', () => {
  it('answers the removals after a seq, oldest first', () => {
    const log = new RemovalLog(10);
    log.add({ seq: 3, path: 'a', version: 2, tenant: 't' });
    log.add({ seq: 5, path: 'b', version: 4, tenant: 't' });
    log.add({ seq: 5, path: 'c', version: 2, tenant: 't' });
    log.add({ seq: 9, path: 'd', version: 7, tenant: 't' });
    assert.deepEqual([...log.since(4)].map((e) => e.path), ['b', 'c', 'd']);
    assert.deepEqual([...log.since(5)].map((e) => e.path), ['d']);
    assert.deepEqual([...log.since(9)], []);
    assert.deepEqual([...log.since(0)].map((e) => e.path), ['a', 'b', 'c', 'd']);
    assert.ok(log.reaches(0));
  });

  it('forgets the oldest past its capacity; positions below the floor are not reached', () => {
    const log = new RemovalLog(3);
    for (let seq = 1; seq <= 10; seq++) log.add({ seq, path: `p${seq}`, version: 2, tenant: 't' });
    assert.equal(log.size, 3);
    assert.equal(log.floor, 7);
    assert.ok(!log.reaches(6));
    assert.ok(log.reaches(7));
    assert.deepEqual([...log.since(7)].map((e) => e.path), ['p8', 'p9', 'p10']);
  });

  it('refuses an entry out of seq order; capacity 0 keeps only the floor', () => {
    const log = new RemovalLog(5);
    log.add({ seq: 4, path: 'a', version: 2, tenant: 't' });
    assert.throws(() => log.add({ seq: 3, path: 'b', version: 2, tenant: 't' }), RangeError);
    const none = new RemovalLog(0);
    none.add({ seq: 8, path: 'a', version: 2, tenant: 't' });
    assert.equal(none.floor, 8);
    assert.equal(none.size, 0);
  });

  it('stays bounded and fast over a long run', () => {
    const log = new RemovalLog(1000);
    for (let seq = 1; seq <= 200_000; seq++) log.add({ seq, path: `p${seq % 5000}`, version: 2, tenant: 't' });
    assert.equal(log.size, 1000);
    assert.equal([...log.since(199_500)].length, 500);
  });
});

describe('TopicStore: per-topic seq and removals', () => {
  const put = (store: TopicStore, path: string, value: Record<string, number> | null) => store.apply([{ path, source: 's', value }]);

  it('stamps each topic with the seq of its last change and logs removals with theirs', () => {
    const store = new TopicStore();
    put(store, 'a', { n: 1 }); // seq 1
    put(store, 'b', { n: 1 }); // seq 2
    put(store, 'a', { n: 2 }); // seq 3
    assert.equal(store.apply([{ path: 'a', source: 's', value: { n: 2 } }]), null, 'no change, no seq');
    put(store, 'b', null); // seq 4
    assert.equal(store.get('a')!.seq, 3);
    assert.deepEqual([...store.removalsSince(3)!].map((e) => [e.path, e.seq, e.version]), [['b', 4, 2]]);
    assert.deepEqual([...store.removalsSince(4)!], []);
  });

  it('knows the version a topic had at a seq as far as its history reaches', () => {
    const store = new TopicStore({ history: { perTopic: 3 } });
    put(store, 'a', { n: 0 }); // seq 1, v1
    for (let n = 1; n <= 6; n++) put(store, 'a', { n }); // seqs 2..7, v2..v7
    put(store, 'x', { n: 0 }); // seq 8
    const a = store.get('a')!;
    assert.equal(store.versionAt(a, 8), 7, 'unchanged since: the current version');
    assert.equal(store.versionAt(a, 6), 6);
    assert.equal(store.versionAt(a, 5), 5);
    assert.equal(store.versionAt(a, 4), 4, 'v5 is the oldest change held; v4 was made at seq 4');
    assert.equal(store.versionAt(a, 3), null, 'v3 at seq 3 is no longer known');
  });

  it('restores the removal log and seqs with durable state; without a stored log it reaches only to the stored seq', () => {
    const store = new TopicStore();
    store.restore({ epoch: 'e', seq: 40, versionFloor: 0, removals: { floor: 10, entries: [{ seq: 12, path: 'gone', version: 3, tenant: 'default' }] } }, [
      { path: 'a', tenant: 'default', source: 's', version: 4, value: { n: 1 }, seq: 30 },
    ]);
    assert.equal(store.get('a')!.seq, 30);
    assert.deepEqual([...store.removalsSince(10)!].map((e) => e.path), ['gone']);
    assert.equal(store.removalsSince(9), null);
    const old = new TopicStore();
    old.restore({ epoch: 'e', seq: 40, versionFloor: 0 }, []);
    assert.equal(old.removalsSince(39), null);
    assert.deepEqual([...old.removalsSince(40)!], []);
  });
});

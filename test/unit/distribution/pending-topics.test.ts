/**
 * The pending-topic state machine (settled → ready → released, settled → waiting → ready by time,
 * windows extended, entries replaced or deleted) transition by transition: what session-delivery
 * relies on so that a merged or throttled topic is sent exactly once, at the right time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PendingTopic, PendingTopics, TICK_MS } from '../../../services/distribution/pending-topics.ts';

function entry(path: string, over: Partial<PendingTopic> = {}): PendingTopic {
  return { path, held: true, heldVersion: 1, heldValue: { n: 1 }, version: 1, state: 'settled', until: 0, interval: 0, bucket: 0, ...over };
}

describe('PendingTopics', () => {
  it('a settled entry outside any window becomes ready on touch and is released once', () => {
    const p = new PendingTopics();
    const e = entry('a');
    p.add(e);
    assert.equal(p.size, 1);
    assert.equal(p.readyCount, 0);
    assert.equal(p.touch(e, 1000), false, 'first change: not a conflation');
    assert.equal(e.state, 'ready');
    assert.equal(p.touch(e, 1001), true, 'second change before the release: merged');
    assert.equal(p.readyCount, 1, 'merged, not queued twice');
    assert.deepEqual(p.takeReady(), [e]);
    assert.deepEqual(p.takeReady(), [], 'taken once');
    assert.equal(p.get('a'), e, 'still registered: the caller settles or deletes it');
  });

  it('an entry added ready is released at the next take', () => {
    const p = new PendingTopics();
    const e = entry('a', { state: 'ready' });
    p.add(e);
    assert.deepEqual(p.takeReady(), [e]);
  });

  it('a touch inside the throttle window waits in its time bucket, then becomes ready', () => {
    const p = new PendingTopics();
    const e = entry('a', { until: 1_005, interval: 500 });
    p.add(e);
    assert.equal(p.nextDue(), Math.ceil(1_005 / TICK_MS) * TICK_MS, 'the window end, rounded up to a tick');
    assert.equal(p.touch(e, 1_000), false);
    assert.equal(e.state, 'waiting');
    assert.deepEqual(p.takeReady(), [], 'not before its window ends');
    const expired: PendingTopic[] = [];
    assert.equal(p.due(1_000, (x) => expired.push(x)), false, 'bucket not due yet');
    assert.equal(p.due(1_010, (x) => expired.push(x)), true);
    assert.equal(e.state, 'ready');
    assert.deepEqual(expired, []);
    assert.deepEqual(p.takeReady(), [e]);
    assert.equal(p.nextDue(), 0, 'no bucket left');
  });

  it('a settled entry whose window ended is handed to `expired`, not released', () => {
    const p = new PendingTopics();
    const e = entry('a');
    p.add(e);
    p.hold(e, 2_000);
    const expired: PendingTopic[] = [];
    assert.equal(p.due(2_000, (x) => expired.push(x)), false);
    assert.deepEqual(expired, [e]);
    assert.deepEqual(p.takeReady(), []);
  });

  it('a window extended after the entry was bucketed moves it to the later bucket', () => {
    const p = new PendingTopics();
    const e = entry('a', { until: 1_000 });
    p.add(e);
    p.touch(e, 900);
    e.until = 1_500; // a new send restarted its window
    const expired: PendingTopic[] = [];
    assert.equal(p.due(1_000, (x) => expired.push(x)), false, 'rescheduled, not released');
    assert.equal(e.state, 'waiting');
    assert.equal(p.nextDue(), 1_500);
    assert.equal(p.due(1_500, (x) => expired.push(x)), true);
    assert.deepEqual(p.takeReady(), [e]);
  });

  it('a deleted or replaced entry is never released', () => {
    const p = new PendingTopics();
    const old = entry('a');
    p.add(old);
    p.touch(old, 0);
    const replacement = entry('a', { version: 2 });
    p.add(replacement);
    assert.deepEqual(p.takeReady(), [], 'the replaced entry is stale');
    const b = entry('b', { until: 100 });
    p.add(b);
    p.touch(b, 0);
    p.delete(b);
    assert.equal(b.state, 'settled');
    assert.equal(p.get('b'), undefined);
    assert.equal(p.due(100, () => assert.fail('a deleted entry expired')), false);
    assert.equal(p.size, 1);
  });

  it('delete of an entry that was replaced keeps the replacement', () => {
    const p = new PendingTopics();
    const old = entry('a');
    p.add(old);
    const replacement = entry('a');
    p.add(replacement);
    p.delete(old);
    assert.equal(p.get('a'), replacement);
  });

  it('clear forgets entries, ready list and buckets', () => {
    const p = new PendingTopics();
    const a = entry('a');
    const b = entry('b', { until: 50 });
    p.add(a);
    p.add(b);
    p.touch(a, 0);
    p.clear();
    assert.equal(p.size, 0);
    assert.deepEqual(p.takeReady(), []);
    assert.equal(p.nextDue(), 0);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DeliveryTarget, FanOut, type Subscription } from '../../../services/distribution/fan-out.ts';
import { ABUSE_FACTOR, RateLimiter } from '../../../services/distribution/rate-limiter.ts';
import { parseSelector } from '../../../core/selector.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { recordingTarget as fakeSession } from '../../support/fake-target.ts';

function subscribe(fan: FanOut, target: DeliveryTarget, selector: string): Subscription {
  const sub: Subscription = { id: selector, selector: parseSelector(selector), target };
  fan.index.add(sub.selector, sub);
  return sub;
}

describe('FanOut', () => {
  it('queues each change for every session whose subscriptions match, once per session, in order', () => {
    const store = new TopicStore();
    const fan = new FanOut();
    const a = fakeSession();
    const b = fakeSession();
    const c = fakeSession();
    subscribe(fan, a, 'orders/**');
    subscribe(fan, a, 'orders/7/*'); // overlaps the first: still once
    subscribe(fan, a, 'orders/7/1');
    subscribe(fan, b, 'orders/*/1');
    subscribe(fan, c, 'customers/**');
    const batch = store.apply([
      { path: 'orders/7/1', source: 't', value: { x: 'é' } },
      { path: 'orders/8/2', source: 't', value: { x: 2 } },
    ])!;
    fan.deliver(batch);
    assert.deepEqual(a.got, [batch.changes[0].wire, batch.changes[1].wire]);
    assert.deepEqual(b.got, [batch.changes[0].wire]);
    assert.deepEqual(c.got, []);
    assert.equal(a.bytes[0], Buffer.byteLength(batch.changes[0].wire), 'UTF-8 bytes');
    assert.equal(a.got[0], b.got[0], 'the same string, serialized once');
  });

  it('stops delivering once a subscription is removed from the index', () => {
    const store = new TopicStore();
    const fan = new FanOut();
    const a = fakeSession();
    const sub = subscribe(fan, a, 't/*');
    fan.deliver(store.apply([{ path: 't/1', source: 's', value: { v: 1 } }])!);
    fan.index.remove(sub.selector, sub);
    fan.deliver(store.apply([{ path: 't/1', source: 's', value: { v: 2 } }])!);
    assert.equal(a.got.length, 1);
  });
});

describe('RateLimiter', () => {
  it('allows `limit` per one-second window, refuses beyond, and calls abuse past limit × ABUSE_FACTOR', () => {
    let now = 0;
    const r = new RateLimiter(3, () => now);
    const verdicts = Array.from({ length: 3 * ABUSE_FACTOR + 1 }, () => r.hit());
    assert.deepEqual(verdicts.slice(0, 4), ['ok', 'ok', 'ok', 'limited']);
    assert.equal(verdicts[3 * ABUSE_FACTOR - 1], 'limited');
    assert.equal(verdicts[3 * ABUSE_FACTOR], 'abuse');
    now = 999;
    assert.equal(r.hit(), 'abuse');
    now = 1000;
    assert.equal(r.hit(), 'ok', 'a new window');
  });
});

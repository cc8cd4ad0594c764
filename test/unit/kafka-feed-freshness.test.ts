/** Feed ages and the stale threshold with an injected clock, kafka.staleAfterMs validation, and what /ready tells a stranger. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeedFreshness } from '../../connectors/kafka/feed-freshness.ts';
import { resolveKafkaSettings } from '../../connectors/kafka/kafka-options.ts';
import { readiness } from '../../services/metrics/readiness.ts';

function clocked(staleAfterMs: number | null) {
  let now = 1_000;
  const f = new FeedFreshness(staleAfterMs, () => now);
  f.begin(new Map([['orders', 'kafka:orders'], ['quotes', 'kafka:quotes']]), new Map([['__hb', ['orders']]]));
  return { f, tick: (ms: number) => (now += ms) };
}

describe('FeedFreshness', () => {
  it('a feed is stale once unheard for the threshold, and fresh at its next record', () => {
    const { f, tick } = clocked(500);
    tick(499);
    assert.equal(f.check(), false);
    tick(1);
    assert.equal(f.check(), true);
    assert.deepEqual(f.stale(), [{ feed: 'orders', source: 'kafka:orders', ageMs: 500 }, { feed: 'quotes', source: 'kafka:quotes', ageMs: 500 }]);
    assert.equal(f.check(), false, 'no change, no report');
    assert.equal(f.heard('quotes'), true);
    assert.deepEqual(f.stale().map((s) => s.feed), ['orders']);
    assert.equal(f.heard('quotes'), false, 'already fresh');
  });

  it('a heartbeat refreshes only the feeds of its mapping, and is not a feed itself', () => {
    const { f, tick } = clocked(500);
    tick(400);
    assert.equal(f.heard('__hb'), false);
    tick(200);
    f.check();
    assert.deepEqual(f.stale().map((s) => s.feed), ['quotes']);
    assert.deepEqual(f.ages().map((a) => [a.topic, a.ageMs, a.stale]), [['orders', 200, false], ['quotes', 600, true]]);
    assert.ok(f.isHeartbeat('__hb') && !f.isHeartbeat('orders'));
    assert.equal(f.heard('unknown'), false);
  });

  it('without a threshold nothing is ever stale, ages are still measured', () => {
    const { f, tick } = clocked(null);
    tick(10_000_000);
    assert.equal(f.check(), false);
    assert.deepEqual(f.stale(), []);
    assert.equal(f.ages()[0].ageMs, 10_000_000);
  });
});

describe('kafka.staleAfterMs and heartbeatTopic settings', () => {
  const base = { brokers: ['localhost:9092'], topics: [{ topic: 'orders', format: 'json' as const, path: 'o/{key}' }] };
  it('defaults to off and refuses nonsense with what to do', () => {
    assert.equal(resolveKafkaSettings(base).staleAfterMs, null);
    assert.equal(resolveKafkaSettings({ ...base, staleAfterMs: 30_000 }).staleAfterMs, 30_000);
    assert.throws(() => resolveKafkaSettings({ ...base, staleAfterMs: 10 }), /kafka\.staleAfterMs.*between 100/);
    assert.throws(() => resolveKafkaSettings({ ...base, staleAfterMs: 1.5 }), /kafka\.staleAfterMs/);
    assert.throws(() => resolveKafkaSettings({ ...base, topics: [{ ...base.topics[0], heartbeatTopic: 'orders' }] }), /heartbeatTopic.*not be the mapped topic/);
    assert.throws(() => resolveKafkaSettings({ ...base, topics: [{ ...base.topics[0], heartbeatTopic: '' }] }), /heartbeatTopic/);
  });
});

describe('readiness with a stale feed', () => {
  it('is not ready; the feed is named in the detail only, never in what a stranger gets', () => {
    const r = readiness([{ name: 'kafka', state: 'degraded', detail: 'stale feed(s): secret.orders (3.0 s)', stale: [{ feed: 'secret.orders', source: 'kafka:secret.orders', ageMs: 3000 }] }]);
    assert.equal(r.ready, false);
    assert.match(r.reasons.join(), /secret\.orders/);
    assert.deepEqual(r.brief, ['kafka: degraded']);
  });
});

/**
 * Issue #13, item 2: `maxRate` has a real minimum (0.01 updates/s: intervals of at most 100 s),
 * refused with INVALID_MESSAGE on the wire and by the subscribe check; and a throttle window
 * longer than any timer can wait is waited for in capped pieces, never with a delay Node would
 * turn into 1 ms (a timer that fires, re-arms and warns once a millisecond).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseClientMessage } from '../../../services/distribution/protocol.ts';
import { MAX_TIMER_MS, SessionDelivery, timerDelay } from '../../../services/distribution/session-delivery.ts';
import type { ChangeContext, Subscription } from '../../../services/distribution/fan-out.ts';
import { MAX_RATE_BOUNDS, checkSubscribe } from '../../../services/distribution/subscribe-request.ts';
import { parseSelector } from '../../../core/selector.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { recordingDeliveryPort } from '../../support/fake-delivery-port.ts';
import { recordingTarget } from '../../support/fake-target.ts';

const subscribe = (maxRate: number) => ({ type: 'subscribe' as const, id: 's1', selector: 'ticks/**', maxRate });
const limits = { live: new Map(), serverMax: 10, tenantMax: Infinity, filterChars: 0 };

describe('maxRate bounds', () => {
  it('are 0.01 to 1000 updates per second, as the schema and docs/PROTOCOL.md state', () => {
    assert.deepEqual(MAX_RATE_BOUNDS, { min: 0.01, max: 1000 });
    const schema = JSON.parse(readFileSync(new URL('../../../schemas/protocol/subscribe.schema.json', import.meta.url), 'utf8'));
    assert.deepEqual({ min: schema.properties.maxRate.minimum, max: schema.properties.maxRate.maximum }, MAX_RATE_BOUNDS, 'the schema states the same bounds');
    const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    assert.match(doc, /`maxRate` \(optional\): at most this many updates per second per topic, from 0\.01 \(one update\s+per 100 s\) to 1,000/);
  });

  it('refuses a rate below the minimum on the wire with INVALID_MESSAGE naming maxRate, and serves the minimum', () => {
    for (const rate of [1e-9, 0.009, 1000.5, 0, -1]) {
      const r = parseClientMessage(JSON.stringify(subscribe(rate)));
      assert.equal(r.ok, false, `maxRate ${rate} is refused`);
      if (!r.ok) {
        assert.equal(r.error.code, 'INVALID_MESSAGE');
        assert.equal(r.error.id, 's1');
        assert.match(r.error.message, /maxRate/);
      }
    }
    for (const rate of [0.01, 2, 1000]) assert.equal(parseClientMessage(JSON.stringify(subscribe(rate))).ok, true, `maxRate ${rate} is served`);
  });

  it('are checked before a subscription is registered, with a message that says what to send', () => {
    const refused = checkSubscribe(subscribe(1e-9), limits);
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      assert.equal(refused.error.code, 'INVALID_MESSAGE');
      assert.match(refused.error.message, /from 0\.01 \(one update per 100 s\) to 1000: raise it, or leave it out/);
    }
    const min = checkSubscribe(subscribe(0.01), limits);
    assert.ok(min.ok && min.maxRate === 0.01);
    const none = checkSubscribe({ type: 'subscribe', id: 's2', selector: 'ticks/**' }, limits);
    assert.ok(none.ok && none.maxRate === 0, 'no maxRate: every update');
  });
});

describe('throttle timers', () => {
  it('never hand setTimeout a delay it would overflow', () => {
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
    assert.equal(timerDelay(1e303), MAX_TIMER_MS);
    assert.equal(timerDelay(Infinity), MAX_TIMER_MS);
    assert.equal(timerDelay(-5), 0);
    assert.equal(timerDelay(250), 250);
  });

  it('wait for a window longer than a timer can hold without spinning or warning', async () => {
    // A rate below the minimum can no longer come from a client; set it directly, as a bug or a
    // future entry point might, and the delivery must still not spin.
    const store = new TopicStore();
    const sub = { id: 's1', selector: parseSelector('ticks/**'), target: recordingTarget(), maxRate: 1e-9 } satisfies Subscription;
    const port = recordingDeliveryPort(store, [sub]);
    const pushed = port.sent;
    let clockReads = 0;
    const delivery = new SessionDelivery(port, { slowClientPolicy: 'conflate', slowClientBytes: 1 << 20, slowClientGraceMs: 10_000, maxConflatedTopics: 10 }, () => {
      clockReads++;
      return Date.now();
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      delivery.count(sub, 1);
      const change = store.apply([{ path: 'ticks/1', source: 't', value: { n: 1 } }])!.changes[0];
      const ctx = { previous: undefined, batch: 1, seq: 1, projectedChange: () => change.wire, enterValue: () => change.wire } satisfies ChangeContext;
      delivery.begin(sub);
      delivery.deliver(change, ['ticks', '1'], ctx);
      assert.deepEqual(pushed, [change.wire], 'the first update goes out at once');
      assert.equal(delivery.pending.size, 1, 'the topic waits for the end of its window');
      const armed = clockReads;
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(clockReads - armed, 0, `the throttle timer did not fire while the window is open (it fired ${clockReads - armed} times in 100 ms)`);
      assert.deepEqual(warnings.filter((w) => w.name === 'TimeoutOverflowWarning').map((w) => w.message), []);
      assert.equal(delivery.pending.size, 1, 'still waiting');
    } finally {
      process.off('warning', onWarning);
      delivery.dispose();
    }
  });
});

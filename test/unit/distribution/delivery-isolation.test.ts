/**
 * Issue #11, item 5, at the two seams: fan-out's fast path hands a session's failure to that
 * session (and goes on with the others), and the in-process hand-off delivers a batch to every
 * listener whatever one of them throws; a throw in a delivery timer (throttle, slow-client poll,
 * grace) ends that session instead of escaping to the process. End to end: test/integration/delivery-isolation.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChangeContext, FanOut, type Subscription } from '../../../services/distribution/fan-out.ts';
import { SessionDelivery } from '../../../services/distribution/session-delivery.ts';
import { InProcessHandoff } from '../../../services/handoff/handoff.ts';
import { parseSelector } from '../../../core/selector.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { type ChangeBatch } from '../../../core/topic.ts';
import { recordingDeliveryPort } from '../../support/fake-delivery-port.ts';
import { recordingTarget } from '../../support/fake-target.ts';

/** Stands in for a session on fan-out's fast path; `throws` makes its enqueue fail. */
const fakeSession = (throws: boolean) => recordingTarget({ throws });

describe('FanOut isolation', () => {
  it('a session that throws on the fast path is reported once per change; the sessions before and after it get every change', () => {
    const store = new TopicStore();
    const fan = new FanOut();
    const sessions = [fakeSession(false), fakeSession(true), fakeSession(false)];
    for (const s of sessions) {
      const sub: Subscription = { id: 's', selector: parseSelector('t/**'), target: s };
      fan.index.add(sub.selector, sub);
    }
    const batch = store.apply([
      { path: 't/1', source: 's', value: { v: 1 } },
      { path: 't/2', source: 's', value: { v: 2 } },
    ])!;
    assert.doesNotThrow(() => fan.deliver(batch));
    const wires = batch.changes.map((c) => c.wire);
    assert.deepEqual(sessions[0].got, wires);
    assert.deepEqual(sessions[2].got, wires);
    assert.deepEqual(sessions[1].failures.map((f) => [f.path, (f.err as Error).message]), [
      ['t/1', 'injected enqueue failure'],
      ['t/2', 'injected enqueue failure'],
    ]);
  });
});

describe('InProcessHandoff isolation', () => {
  it('a throwing listener is reported; every other listener gets the batch and publish resolves', async () => {
    const store = new TopicStore();
    const errors: Array<[unknown, number]> = [];
    const handoff = new InProcessHandoff(store, { onListenerError: (err, batch) => errors.push([err, batch.seq]) });
    const got: ChangeBatch[][] = [[], []];
    handoff.subscribe((b) => got[0].push(b));
    handoff.subscribe(() => {
      throw new Error('injected listener failure');
    });
    handoff.subscribe((b) => got[1].push(b));
    const batch = store.apply([{ path: 't/1', source: 's', value: { v: 1 } }])!;
    await handoff.publish(batch);
    assert.deepEqual(got, [[batch], [batch]]);
    assert.equal(errors.length, 1);
    assert.equal((errors[0][0] as Error).message, 'injected listener failure');
    assert.equal(errors[0][1], batch.seq);
  });
});

describe('SessionDelivery timers', () => {
  it('a throw in a throttle tick ends that session through the port, never escapes the timer', async () => {
    const store = new TopicStore();
    const sub = { id: 's1', selector: parseSelector('t/**'), target: recordingTarget(), maxRate: 100 } satisfies Subscription;
    const failures: unknown[] = [];
    const port = recordingDeliveryPort(store, [sub], {
      // The tick asks for a flush once the throttled update is due: that is where the bug is injected.
      requestFlush: () => {
        throw new Error('injected tick failure');
      },
      failed: (err) => failures.push(err),
    });
    const sent = port.sent;
    const delivery = new SessionDelivery(port, { slowClientPolicy: 'conflate', slowClientBytes: 1 << 20, slowClientGraceMs: 10_000, maxConflatedTopics: 10 });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      delivery.count(sub, 1);
      for (const n of [1, 2]) {
        const batch = store.apply([{ path: 't/1', source: 's', value: { n } }])!;
        const change = batch.changes[0];
        const ctx = { previous: undefined, batch: 1, seq: batch.seq, projectedChange: () => change.wire, enterValue: () => change.wire } satisfies ChangeContext;
        delivery.begin(sub);
        delivery.deliver(change, ['t', '1'], ctx);
      }
      assert.equal(sent.length, 1, 'the second update waits for the end of the 10 ms window');
      await new Promise((r) => setTimeout(r, 60));
      assert.deepEqual(uncaught, [], 'nothing escaped the timer');
      assert.deepEqual(failures.map((e) => (e as Error).message), ['injected tick failure']);
    } finally {
      process.off('uncaughtException', onUncaught);
      delivery.dispose();
    }
  });
});

/**
 * Issue #11, item 5, at the two seams: fan-out's fast path hands a session's failure to that
 * session (and goes on with the others), and the in-process hand-off delivers a batch to every
 * listener whatever one of them throws. End to end: test/integration/delivery-isolation.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FanOut, type Subscription } from '../../services/distribution/fan-out.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { parseSelector } from '../../core/selector.ts';
import { type ChangeBatch, TopicStore } from '../../services/topics/topic-store.ts';
import { recordingTarget } from '../support/fake-target.ts';

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

/**
 * One timer per server batches every session's pending messages into one flush: armed only while
 * something is pending, every scheduled session flushed once per round, the shared encoder reset.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { type FlushTarget, FlushScheduler } from '../../../services/distribution/flush-scheduler.ts';
import type { FrameEncoder } from '../../../services/distribution/frame-encoder.ts';

function target(name: string, log: string[], encoders: FrameEncoder[] = []): FlushTarget {
  return { flush: (encoder) => (log.push(name), encoders.push(encoder)) };
}

describe('FlushScheduler', () => {
  it('interval 0: flushes on the next turn of the event loop, every session once, with one encoder', async () => {
    const s = new FlushScheduler(0);
    const log: string[] = [];
    const encoders: FrameEncoder[] = [];
    s.schedule(target('a', log, encoders));
    s.schedule(target('b', log, encoders));
    assert.deepEqual(log, [], 'not synchronously');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['a', 'b']);
    assert.equal(encoders[0], encoders[1], 'one encoder per round, so identical frames are encoded once');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['a', 'b'], 'nothing pending: no second flush');
  });

  it('interval > 0: sessions scheduled within the interval are flushed together, after it', async () => {
    const s = new FlushScheduler(30);
    const log: string[] = [];
    const started = Date.now();
    s.schedule(target('a', log));
    await sleep(10);
    s.schedule(target('b', log));
    assert.deepEqual(log, []);
    await sleep(40);
    assert.deepEqual(log, ['a', 'b']);
    assert.ok(Date.now() - started >= 30);
  });

  it('a session scheduled during a flush waits for the next round', async () => {
    const s = new FlushScheduler(0);
    const log: string[] = [];
    const late = target('late', log);
    s.schedule({ flush: () => (log.push('first'), s.schedule(late)) });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['first']);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['first', 'late']);
  });

  it('flush() flushes now; stop() cancels the timer and forgets what was pending', async () => {
    const s = new FlushScheduler(20);
    const log: string[] = [];
    s.schedule(target('a', log));
    s.flush();
    assert.deepEqual(log, ['a']);
    s.schedule(target('b', log));
    s.stop();
    await sleep(40);
    assert.deepEqual(log, ['a'], 'stopped: b never flushed');
  });
});

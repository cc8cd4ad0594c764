/**
 * An edge's replica as its source (services/handoff/replica-source.ts), state by state: starting,
 * catching up to the end offset at start (and to a first batch on an empty log), streaming, failed
 * on a record it cannot apply, and started again where it stopped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChangeBatch } from '../../../core/topic.ts';
import type { HandoffLog, HandoffLogReadHandler, HandoffLogRecord } from '../../../services/handoff/handoff-log.ts';
import { encodeBatch } from '../../../services/handoff/log-record.ts';
import { ReplicaSource } from '../../../services/handoff/replica-source.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';

const src = 'postgres:public.accounts';

/** A log whose reader hands on records only when `deliver()` is called. */
class StepLog implements HandoffLog {
  readonly records: HandoffLogRecord[] = [];
  private reader: { next: number; handler: HandoffLogReadHandler; position: { next: string; end: string } } | null = null;

  append(batch: ChangeBatch | Buffer, timestamp?: number): void {
    for (const value of Buffer.isBuffer(batch) ? [batch] : encodeBatch(batch)) this.records.push({ offset: String(this.records.length), value, timestamp: timestamp === undefined ? undefined : String(timestamp) });
  }

  /** Hands the reader up to `n` records not read yet. */
  deliver(n = Infinity): void {
    const r = this.reader!;
    const records = this.records.slice(r.next, r.next + n);
    r.next += records.length;
    r.position.next = String(r.next);
    r.position.end = String(this.records.length);
    if (records.length > 0) r.handler.records(records, r.position.end);
  }

  async end(): Promise<string> {
    return String(this.records.length);
  }

  async openWriter(): Promise<never> {
    throw new Error('not used');
  }

  async openReader(offset: string, handler: HandoffLogReadHandler) {
    const position = { next: offset, end: '0' };
    this.reader = { next: Number(offset), handler, position };
    return { position, close: async () => void (this.reader = null) };
  }
}

const tick = () => new Promise((r) => setImmediate(r));

/** `n` batches the log took one second apart, the last one now. */
function ingest(n: number): { log: StepLog; origin: TopicStore } {
  const log = new StepLog();
  const origin = new TopicStore({ epoch: 'ingest-epoch' });
  const now = Date.now();
  for (let i = 1; i <= n; i++) log.append(origin.apply([{ path: `accounts/${i}`, source: src, value: { id: i } }])!, now - (n - i) * 1000);
  return { log, origin };
}

function edge(log: StepLog, stops: Array<[string, string | undefined]> = []): ReplicaSource {
  return new ReplicaSource(new TopicStore(), log, { topic: 'handoff-t', onStopped: (err, offset) => stops.push([err.message, offset]) });
}

test('starting, then catching up to the end offset at start, then streaming with no lag', async () => {
  const { log } = ingest(3);
  const source = edge(log);
  assert.equal(source.health().state, 'starting');
  let started = false;
  const start = source.start().then(() => (started = true));
  await tick();
  assert.deepEqual(source.health(), { name: 'handoff', state: 'snapshotting', detail: 'catching up: 3 record(s) behind the end offset at start (3) of the hand-off topic handoff-t' });
  log.deliver(2);
  await tick();
  assert.equal(started, false, 'not caught up after 2 of 3 records');
  const { seconds, ...records } = source.lag();
  assert.deepEqual(records, { offset: '2', end: '3', behind: 1 });
  assert.ok(seconds >= 1 && seconds < 5, `the last batch applied was taken by the log a second before the last one (${seconds} s)`);
  log.deliver();
  await start;
  assert.deepEqual(source.health(), { name: 'handoff', state: 'streaming' });
  assert.equal(source.replica.view.epoch, 'ingest-epoch');
  assert.deepEqual(source.lag(), { offset: '3', end: '3', behind: 0, seconds: 0 });
});

test('an empty log: not caught up before the first batch, which brings the epoch', async () => {
  const { log, origin } = ingest(0);
  const source = edge(log);
  let started = false;
  const start = source.start().then(() => (started = true));
  await tick();
  await tick();
  assert.equal(started, false);
  assert.match(source.health().detail ?? '', /waiting for the ingest node's first batch on the hand-off topic handoff-t/);
  log.append(origin.apply([{ path: 'accounts/1', source: src, value: { id: 1 } }])!);
  log.deliver();
  await start;
  assert.equal(source.health().state, 'streaming');
  assert.equal(source.replica.view.epoch, 'ingest-epoch');
});

test('a record it cannot apply: start fails with it, the source is failed for good, onStopped has the offset', async () => {
  const { log } = ingest(2);
  log.append(Buffer.from('not a hand-off record'));
  const stops: Array<[string, string | undefined]> = [];
  const source = edge(log, stops);
  const start = source.start();
  await tick();
  log.deliver();
  await assert.rejects(start, (err: Error & { code?: string }) => err.code === 'HANDOFF_RECORD_INVALID');
  assert.equal(stops.length, 1);
  assert.equal(stops[0][1], '2');
  const h = source.health();
  assert.equal(h.state, 'failed');
  assert.match(h.detail ?? '', /^stopped applying the hand-off topic handoff-t at offset 2 \(.*\): restart this edge to rebuild its state from the log$/);
});

test('stopped and started again, it reads on from the batch after the last one applied', async () => {
  const { log, origin } = ingest(2);
  const source = edge(log);
  const first = source.start();
  await tick();
  log.deliver();
  await first;
  await source.stop();
  assert.equal(source.health().state, 'stopped');
  log.append(origin.apply([{ path: 'accounts/1', source: src, value: { id: 1, n: 2 } }])!);
  const again = source.start();
  await tick();
  log.deliver();
  await again;
  assert.equal(source.replica.stopped, null);
  assert.deepEqual(source.replica.view.get('accounts/1')?.value, { id: 1, n: 2 });
  assert.deepEqual(source.lag(), { offset: '3', end: '3', behind: 0, seconds: 0 });
});

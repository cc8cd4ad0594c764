// The Kafka connector's lifecycle, transition by transition, and what health() says in each state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../core/backoff.ts';
import {
  type ConnectorState,
  IDLE,
  caughtUp,
  failed,
  recovered,
  running,
  starting,
  stopped,
  toHealth,
  troubled,
} from '../../connectors/kafka/connector-state.ts';

const none = { partitions: 0, records: 0 };
const health = (s: ConnectorState, behind: typeof none | null = none) => toHealth('kafka', s, behind);

test('start: idle → starting → running(catching-up) → running(streaming)', () => {
  assert.deepEqual(health(IDLE), { name: 'kafka', state: 'stopped', detail: 'not started' });
  const s1 = starting(IDLE, 'connecting to k:9092');
  assert.deepEqual(health(s1), { name: 'kafka', state: 'starting', detail: 'connecting to k:9092' });
  const s2 = running(s1);
  assert.deepEqual(s2, { kind: 'running', phase: 'catching-up', trouble: null });
  assert.deepEqual(health(s2, null), { name: 'kafka', state: 'snapshotting', detail: 'joining the consumer group' });
  assert.deepEqual(health(s2, { partitions: 2, records: 40 }), {
    name: 'kafka',
    state: 'snapshotting',
    detail: 'catching up: 2 partition(s), 40 record(s) behind the end offsets at start',
  });
  const s3 = caughtUp(s2);
  assert.deepEqual(health(s3), { name: 'kafka', state: 'streaming' });
  assert.equal(caughtUp(s3), s3, 'caught up once');
});

test('trouble makes a running connector degraded in either phase, and recovery returns to that phase', () => {
  const streaming = caughtUp(running(starting(IDLE, 'x')));
  const t = troubled(streaming, 'cannot reach Kafka broker b:1 (ECONNREFUSED); reconnecting', 1_000);
  assert.deepEqual(health(t), {
    name: 'kafka',
    state: 'degraded',
    detail: 'cannot reach Kafka broker b:1 (ECONNREFUSED); reconnecting (since 1970-01-01T00:00:01.000Z)',
  });
  const t2 = troubled(t, 'the Kafka consumer stopped (x); restarting (attempt 1)', 5_000);
  assert.equal((t2 as Extract<ConnectorState, { kind: 'running' }>).trouble!.since, 1_000, 'the trouble keeps its first time');
  assert.equal(troubled(t2, 'the Kafka consumer stopped (x); restarting (attempt 1)', 9_000), t2, 'the same trouble again changes nothing');
  assert.deepEqual(health(recovered(t2)), { name: 'kafka', state: 'streaming' });
  assert.equal(recovered(streaming), streaming, 'recovering without trouble changes nothing');

  const catching = troubled(running(starting(IDLE, 'x')), 'down', 0);
  assert.match(health(catching, { partitions: 1, records: 3 }).detail!, /^down \(since .*\); catching up: 1 partition/);
  assert.equal(health(recovered(catching)).state, 'snapshotting');
  assert.equal(health(caughtUp(catching)).state, 'degraded', 'catching up while in trouble stays degraded');
});

test('trouble before running only updates the starting detail; not at all when idle, stopped or failed', () => {
  const s = troubled(starting(IDLE, 'connecting'), 'cannot reach', 0);
  assert.deepEqual(health(s), { name: 'kafka', state: 'starting', detail: 'cannot reach' });
  for (const x of [IDLE, stopped(IDLE), failed(s, 'boom')]) assert.equal(troubled(x, 'r', 0), x);
});

test('failed and stopped', () => {
  const s = running(starting(IDLE, 'x'));
  const f = failed(s, 'KAFKA_NOT_AUTHORIZED ...');
  assert.deepEqual(health(f), { name: 'kafka', state: 'failed', detail: 'KAFKA_NOT_AUTHORIZED ...' });
  assert.equal(running(f), f, 'a failed connector does not run again without start()');
  assert.equal(health(starting(f, 'again')).state, 'starting', 'start() after a failure');
  const st = stopped(f);
  assert.deepEqual(health(st), { name: 'kafka', state: 'stopped' });
  assert.equal(failed(st, 'late crash'), st, 'a crash reported after stop() does not fail a stopped connector');
  assert.equal(starting(s, 'x'), s, 'starting does not interrupt a running connector');
});

test('restart backoff: a full-jitter delay under a step doubling from 500 ms to 30 s', () => {
  assert.equal(backoffDelay(0, undefined, () => 0.5), 250);
  assert.equal(backoffDelay(3, undefined, () => 0.5), 2000);
  assert.equal(backoffDelay(20, undefined, () => 0.5), 15_000);
  assert.equal(backoffDelay(1, undefined, () => 0), 0);
  assert.equal(backoffDelay(1, undefined, () => 0.999999), 1000);
  assert.equal(backoffDelay(40, undefined, () => 0.999999), 30_000, 'jitter never exceeds the cap');
});

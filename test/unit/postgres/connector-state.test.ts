// The connector's lifecycle transitions, and the reconnect backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SourceState } from '../../../core/ingest.ts';
import { ConnectorState, canTransition } from '../../../connectors/postgres/connector-state.ts';
import { DEFAULT_BACKOFF, backoffDelay } from '../../../core/backoff.ts';

const ALL: SourceState[] = ['stopped', 'starting', 'snapshotting', 'streaming', 'degraded', 'failed'];

test('the happy path and reconnects', () => {
  const s = new ConnectorState();
  assert.equal(s.state, 'stopped');
  for (const to of ['starting', 'snapshotting', 'streaming', 'degraded', 'degraded', 'streaming', 'stopped', 'starting'] as SourceState[]) {
    s.transition(to, `to ${to}`);
    assert.equal(s.state, to);
    assert.equal(s.detail, `to ${to}`);
  }
});

test('exactly these transitions are allowed', () => {
  const allowed = new Set([
    'stopped→starting',
    'starting→snapshotting',
    'starting→streaming',
    'starting→degraded',
    'starting→failed',
    'starting→stopped',
    'snapshotting→streaming',
    'snapshotting→degraded',
    'snapshotting→failed',
    'snapshotting→stopped',
    'streaming→degraded',
    'streaming→failed',
    'streaming→stopped',
    'degraded→streaming',
    'degraded→snapshotting',
    'degraded→degraded',
    'degraded→failed',
    'degraded→stopped',
    'failed→starting',
    'failed→stopped',
  ]);
  for (const from of ALL) {
    for (const to of ALL) {
      assert.equal(canTransition(from, to), allowed.has(`${from}→${to}`), `${from} → ${to}`);
    }
  }
  const s = new ConnectorState();
  assert.throws(() => s.transition('streaming'), /illegal state transition stopped → streaming/);
  assert.equal(s.state, 'stopped', 'an illegal transition changes nothing');
});

test('reconnect backoff: a full-jitter delay under a step doubling from initialMs up to maxMs (default 500 ms to 30 s)', () => {
  const opts = { initialMs: 100, maxMs: 2_000 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 40].map((a) => backoffDelay(a, opts, () => 0.5)),
    [50, 100, 200, 400, 800, 1000, 1000],
  );
  assert.equal(backoffDelay(0, opts, () => 0), 0);
  assert.equal(backoffDelay(0, opts, () => 0.999999), 100);
  assert.equal(backoffDelay(10, opts, () => 0.999999), 2000, 'jitter never exceeds maxMs');
  assert.deepEqual(DEFAULT_BACKOFF, { initialMs: 500, maxMs: 30_000 });
});

// The one backoff every reconnect uses: full jitter under an exponential step with a cap, and a
// counter that starts over only after a connection that held. Random source and clock injected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, backoffDelay, backoffStep } from '../../../core/backoff.ts';

/** A seeded PRNG (mulberry32): the same sequence on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const opts = { initialMs: 100, maxMs: 10_000 };

test('the step doubles from initialMs and stops at maxMs', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 6, 7, 8, 1000].map((a) => backoffStep(a, opts)), [100, 200, 400, 800, 1600, 6400, 10_000, 10_000, 10_000]);
  assert.equal(backoffStep(-3, opts), 100, 'a negative attempt is the first');
});

test('each delay is uniform between 0 and its step (full jitter), never above maxMs', () => {
  assert.equal(backoffDelay(3, opts, () => 0), 0);
  assert.equal(backoffDelay(3, opts, () => 0.5), 400);
  assert.equal(backoffDelay(3, opts, () => 0.999999), 800);
  assert.equal(backoffDelay(50, opts, () => 0.999999), 10_000);
  const random = seeded(42);
  const deciles = new Array(10).fill(0);
  const n = 10_000;
  for (let i = 0; i < n; i++) {
    const d = backoffDelay(4, opts, random);
    assert.ok(d >= 0 && d <= 1600, String(d));
    deciles[Math.min(9, Math.floor(d / 160))]++;
  }
  // Spread over the whole range, not bunched at the step as ±20 % jitter was.
  for (const [i, c] of deciles.entries()) assert.ok(c > n * 0.08 && c < n * 0.12, `decile ${i}: ${c} of ${n}`);
});

test('two clients dropped at the same moment reconnect at different times', () => {
  const a = new Backoff({ ...opts, stableMs: 5_000 }, seeded(1));
  const b = new Backoff({ ...opts, stableMs: 5_000 }, seeded(2));
  const da = [a.next(), a.next(), a.next()];
  const db = [b.next(), b.next(), b.next()];
  assert.notDeepEqual(da, db);
});

test('Backoff: the step keeps doubling while connections drop soon after opening; a stable one starts over', () => {
  let now = 0;
  const backoff = new Backoff({ ...opts, stableMs: 5_000 }, () => 0.5, () => now);
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [50, 100, 200], 'failed connects');
  backoff.connected();
  now += 4_999;
  assert.equal(backoff.next(), 400, 'up for less than stableMs: still backing off');
  backoff.connected();
  now += 5_000;
  assert.equal(backoff.next(), 50, 'up for stableMs: back to the first step');
  assert.equal(backoff.attempts, 1);
  for (let i = 0; i < 20; i++) backoff.next();
  assert.equal(backoff.next(), 5_000, 'capped: half of maxMs at random 0.5');
  backoff.reset();
  assert.equal(backoff.next(), 50);
});

test('Backoff refuses options it cannot honour', () => {
  assert.throws(() => new Backoff({ initialMs: 500, maxMs: 100, stableMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: -1, maxMs: 100, stableMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: Number.NaN, maxMs: 100, stableMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: 1, maxMs: 100, stableMs: -1 }), RangeError);
});

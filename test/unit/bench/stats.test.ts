// Statistics and argument parsing of `npm run bench` (bench/lib/stats.ts, bench/lib/args.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArgsError, parseArgs } from '../../../bench/lib/args.ts';
import { Samples, median, quantileSorted, summarize } from '../../../bench/lib/stats.ts';

test('median of odd and even counts, without reordering the input', () => {
  const xs = [5, 1, 3];
  assert.equal(median(xs), 3);
  assert.deepEqual(xs, [5, 1, 3]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('quantiles are nearest-rank: p99 of 1..1000 is 990, p99.9 is 999', () => {
  const s = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.equal(quantileSorted(s, 0.5), 500);
  assert.equal(quantileSorted(s, 0.99), 990);
  assert.equal(quantileSorted(s, 0.999), 999);
  assert.equal(quantileSorted(s, 1), 1000);
});

test('summarize sorts a copy and reports the tail', () => {
  const values = [10, 1, 1, 1, 1, 1, 1, 1, 1, 1];
  const r = summarize(values);
  assert.equal(r.count, 10);
  assert.equal(r.p50, 1);
  assert.equal(r.max, 10);
  assert.equal(r.p99, 10);
  assert.equal(r.mean, 1.9);
  assert.equal(values[0], 10);
});

test('Samples grows past its initial capacity and keeps every value', () => {
  const s = new Samples();
  for (let i = 0; i < 5000; i++) s.push(i);
  assert.equal(s.length, 5000);
  assert.equal(s.values()[4999], 4999);
  assert.equal(summarize(s.values()).p50, 2499);
});

test('--quick and --only select suites; unknown names and flags are refused with the list', () => {
  const names = ['ingest', 'latency', 'fanout'];
  assert.deepEqual(parseArgs([], names), { quick: false, only: null, help: false, reportOnly: false, rows: null });
  assert.deepEqual(parseArgs(['--quick', '--only', 'ingest,fanout'], names), { quick: true, only: ['ingest', 'fanout'], help: false, reportOnly: false, rows: null });
  assert.equal(parseArgs(['--report'], names).reportOnly, true);
  assert.throws(() => parseArgs(['--report', '--quick'], names), /--report runs no suite/);
  assert.deepEqual(parseArgs(['--only=latency'], names).only, ['latency']);
  assert.throws(() => parseArgs(['--only', 'nope'], names), (e: unknown) => e instanceof ArgsError && /ingest, latency, fanout/.test(e.message));
  assert.throws(() => parseArgs(['--only'], names), ArgsError);
  assert.throws(() => parseArgs(['--fast'], names), /unknown argument "--fast"/);
  assert.equal(parseArgs(['--rows', '2_000_000'], names).rows, 2_000_000);
  assert.equal(parseArgs(['--rows=500'], names).rows, 500);
  assert.throws(() => parseArgs(['--rows', '1.5'], names), /--rows needs a positive whole number/);
});

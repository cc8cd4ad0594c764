// The snapshot's progress line fits the terminal: 79 characters in 80 columns, whatever the table's name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProgressBar, renderDone, renderProgress } from '../../../services/cli/progress-bar.ts';
import type { SnapshotProgressReport } from '../../../services/metrics/index.ts';

const report = (table: string, over: Partial<SnapshotProgressReport> = {}): SnapshotProgressReport => ({
  table,
  rows: 1_234_567,
  total: 2_900_000,
  percent: 42,
  rowsPerSecond: 180_000,
  etaSeconds: 9,
  elapsedMs: 6_900,
  ...over,
});

test('a short table name shows everything', () => {
  assert.equal(renderProgress(report('public.orders')), 'snapshot public.orders ▕█████░░░░░░░▏  42% 1.2M/2.9M rows 180k rows/s ETA 0:09');
  assert.equal(renderDone(report('public.orders', { rows: 2_900_000 })), 'snapshot public.orders ▕████████████▏ 100% 2.9M rows in 0:07 (420k rows/s)');
  assert.equal(renderProgress(report('public.orders', { total: null, percent: null, etaSeconds: null })), 'snapshot public.orders 1.2M rows 180k rows/s');
});

test('every line fits 80 columns (79 characters), keeping both ends of a long table name and the ETA', () => {
  for (const table of ['public.orders', 'analytics.order_line_items_partitioned_by_month_2024_12', `s.${'x'.repeat(200)}`]) {
    for (const over of [{}, { total: null, percent: null, etaSeconds: null }, { etaSeconds: 3_725 }]) {
      for (const line of [renderProgress(report(table, over)), renderDone(report(table, over))]) {
        assert.ok(line.length <= 79, `${line.length} characters: ${line}`);
      }
    }
  }
  const long = renderProgress(report('analytics.order_line_items_partitioned_by_month_2024_12'));
  assert.match(long, /^snapshot analytics\.\S*…\S*_2024_12 ▕/);
  assert.match(long, /ETA 0:09$/);
  assert.equal(renderProgress(report('analytics.order_line_items_partitioned_by_month_2024_12'), 200), 'snapshot analytics.order_line_items_partitioned_by_month_2024_12 ▕█████░░░░░░░▏  42% 1.2M/2.9M rows 180k rows/s ETA 0:09');
});

test('a narrow terminal drops the rate, then the row counts, before the table name gets shorter than 20', () => {
  const line = renderProgress(report('public.order_line_items'), 60);
  assert.ok(line.length <= 59, line);
  assert.doesNotMatch(line, /rows\/s/);
  assert.match(line, /42%.*ETA 0:09$/);
});

test('the bar draws at the width the terminal reports, 80 when it reports none', () => {
  const writes: string[] = [];
  const out = Object.assign(Object.create(process.stderr) as NodeJS.WriteStream, { write: (s: string) => (writes.push(s), true), columns: undefined as number | undefined });
  const bar = new ProgressBar(out);
  bar.update(report(`public.${'t'.repeat(100)}`), 0);
  const drawn = writes.at(-1)!.replace(/^\r/, '').replace(/\x1b\[K$/, '');
  assert.equal(drawn.length, 79);
  out.columns = 120;
  bar.update(report(`public.${'t'.repeat(100)}`, { rows: 2_000_000 }), 1_000);
  assert.equal(writes.at(-1)!.replace(/^\r/, '').replace(/\x1b\[K$/, '').length, 119);
});

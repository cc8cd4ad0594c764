// docs/BENCHMARKS.md and the SVG charts are generated from a run record (bench/lib/report.ts, bench/lib/svg.ts).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HAND_WRITTEN_MARKER, writeReport } from '../../../bench/lib/report.ts';
import { renderChart } from '../../../bench/lib/svg.ts';
import type { RunRecord } from '../../../bench/run.ts';

const chart = {
  id: 'demo',
  title: 'Throughput <as> topics grow',
  x: { label: 'topics', log: true },
  y: { label: 'changes/s' },
  series: [
    { label: 'updates', points: [[1000, 50_000], [100_000, 45_000], [1_000_000, 40_000]] as [number, number][] },
    { label: 'inserts', points: [[1000, 70_000], [1_000_000, 60_000]] as [number, number][] },
  ],
};

test('a chart is a standalone SVG with axes, escaped labels and one line per series', () => {
  const svg = renderChart(chart);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.match(svg, /Throughput &lt;as&gt; topics grow/);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
  assert.equal((svg.match(/<circle /g) ?? []).length, 5);
  assert.match(svg, /topics \(log scale\)/);
  // Log x axis: decades as ticks.
  for (const t of ['1k', '10k', '100k', '1M']) assert.ok(svg.includes(`>${t}</text>`), `tick ${t}`);
  // Every coordinate is inside the 640×380 canvas.
  for (const m of svg.matchAll(/c[xy]="([-\d.]+)"/g)) assert.ok(Number(m[1]) >= 0 && Number(m[1]) <= 640);
});

function record(): RunRecord {
  return {
    startedAt: '2026-01-01T10:00:00.000Z',
    finishedAt: '2026-01-01T10:20:00.000Z',
    quick: false,
    command: 'npm run bench --',
    machine: { nproc: 2, cpuModel: 'Test CPU', memoryGiB: 24, os: 'Debian', kernel: '6.1', node: 'v20.20.2', java: 'openjdk 17', loadAverage: [1, 2, 3], git: { head: 'abc1234', modifiedFiles: 3 } },
    suites: {
      ok: {
        name: 'ok', title: 'A suite that worked', ok: true, startedAt: '2026-01-01T10:00:00.000Z', seconds: 12,
        loadAverageBefore: [1.5, 1, 1], loadAverageAfter: [2, 1, 1],
        result: {
          summary: 'What ran.', command: 'npm run bench -- --only ok',
          tables: [{ title: 'Figures', columns: ['a', 'b|c'], rows: [[1, 'x|y']], notes: ['a note'] }],
          charts: [chart],
          targets: [{ description: 'fast enough', met: false, measured: '3 changes/s' }],
          data: { postgres: '17.10' },
          caveats: ['noisy'],
        },
      },
      broken: {
        name: 'broken', title: 'A suite that failed', ok: false, startedAt: '2026-01-01T10:01:00.000Z', seconds: 1,
        loadAverageBefore: [1, 1, 1], loadAverageAfter: [1, 1, 1], error: 'Error: boom',
      },
    },
  };
}

test('the report lists the machine, every target, every table and chart, and failures', () => {
  const root = mkdtempSync(join(tmpdir(), 'bench-report-'));
  try {
    const written = writeReport(record(), root);
    assert.deepEqual(written, ['docs/BENCHMARKS.md', 'docs/images/bench-demo.svg']);
    const md = readFileSync(join(root, 'docs', 'BENCHMARKS.md'), 'utf8');
    assert.match(md, /\| CPU \| 2 cores \(`nproc`\), Test CPU \|/);
    assert.match(md, /\| Postgres \| 17\.10 /);
    assert.match(md, /commit abc1234 with 3 tracked files modified/);
    assert.match(md, /\| ok \| fast enough \| 3 changes\/s \| \*\*no\*\* \|/);
    assert.match(md, /load average 1\.50 \/ 1\.00 \/ 1\.00/);
    assert.match(md, /Command: `npm run bench -- --only ok`/);
    assert.match(md, /\| 1 \| x\\\|y \|/, 'pipes inside cells are escaped');
    assert.match(md, /!\[Throughput <as> topics grow\]\(images\/bench-demo\.svg\)/);
    assert.match(md, /This suite failed in the last full run:[\s\S]*Error: boom/);
    assert.ok(existsSync(join(root, 'docs', 'images', 'bench-demo.svg')));

    // Sections written by hand below the marker survive a regeneration; nothing else does.
    writeFileSync(join(root, 'docs', 'BENCHMARKS.md'), `${md}\nstale generated line\n${HAND_WRITTEN_MARKER}\n\n## By hand\n\nkept figure 42\n`);
    writeReport(record(), root);
    const again = readFileSync(join(root, 'docs', 'BENCHMARKS.md'), 'utf8');
    assert.match(again, /## By hand\n\nkept figure 42\n$/);
    assert.equal(again.includes('stale generated line'), false);
    assert.equal(again.split(HAND_WRITTEN_MARKER).length, 2, 'the marker once');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

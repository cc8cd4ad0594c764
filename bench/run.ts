/**
 * `npm run bench` — runs the benchmark suites and records what they measured.
 *
 *   npm run bench                       every suite at full size (≤ 30 min on 2 cores)
 *   npm run bench -- --quick            small sizes, < 2 min, every suite end to end (CI)
 *   npm run bench -- --only ingest,latency
 *
 * Results: bench/results/<timestamp>.json and bench/results/latest.json (full runs; a run with
 * --only merges its suites into latest.json), or bench/results/quick-latest.json (--quick).
 * A full run regenerates docs/BENCHMARKS.md and docs/images/bench-*.svg from latest.json.
 * Exits 1 when any suite failed.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/args.ts';
import { machineInfo } from './lib/machine.ts';
import { loadAverage } from './lib/proc.ts';
import { writeReport } from './lib/report.ts';
import type { SuiteResult } from './suite.ts';
import { SUITES } from './suites/index.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(ROOT, 'bench', 'results');

export interface SuiteRecord {
  readonly name: string;
  readonly title: string;
  readonly ok: boolean;
  readonly startedAt: string;
  readonly seconds: number;
  readonly loadAverageBefore: [number, number, number];
  readonly loadAverageAfter: [number, number, number];
  readonly result?: SuiteResult;
  readonly error?: string;
}

export interface RunRecord {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly quick: boolean;
  readonly command: string;
  readonly machine: ReturnType<typeof machineInfo>;
  readonly suites: Record<string, SuiteRecord>;
}

async function main(): Promise<number> {
  const { quick, only, help, reportOnly, rows } = parseArgs(process.argv.slice(2), SUITES.map((s) => s.name));
  if (reportOnly) {
    const latest = JSON.parse(readFileSync(join(RESULTS, 'latest.json'), 'utf8')) as RunRecord;
    process.stderr.write(`wrote ${writeReport(latest, ROOT).join(', ')} from bench/results/latest.json\n`);
    return 0;
  }
  if (help) {
    console.log(`usage: npm run bench -- [--quick] [--only <suite,...>] [--rows <n>] | --report (rewrite the docs from latest.json)\nsuites:\n${SUITES.map((s) => `  ${s.name.padEnd(10)} ${s.title}`).join('\n')}`);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const selected = SUITES.filter((s) => !only || only.includes(s.name));
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  log(`${quick ? 'quick' : 'full'} run: ${selected.map((s) => s.name).join(', ')}; ${machine.nproc} cores, load average ${machine.loadAverage.join(' ')}`);
  const suites: Record<string, SuiteRecord> = {};
  const stamp = startedAt.replace(/[:.]/g, '-');
  const partialFile = join(RESULTS, `${quick ? 'quick-' : ''}${stamp}.json`);
  for (const s of selected) {
    const scratchDir = mkdtempSync(join(tmpdir(), `tidewire-bench-${s.name}-`));
    const before = loadAverage();
    const t0 = performance.now();
    const at = new Date().toISOString();
    log(`── ${s.name}: ${s.title}`);
    try {
      const result = await s.run({ quick, log, scratchDir, root: ROOT, rows });
      const seconds = (performance.now() - t0) / 1000;
      suites[s.name] = { name: s.name, title: s.title, ok: true, startedAt: at, seconds, loadAverageBefore: before, loadAverageAfter: loadAverage(), result };
      log(`── ${s.name}: done in ${seconds.toFixed(1)} s`);
      for (const t of result.targets ?? []) log(`   target ${t.met ? 'MET' : 'NOT MET'}: ${t.description} — ${t.measured}`);
    } catch (err) {
      const seconds = (performance.now() - t0) / 1000;
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      suites[s.name] = { name: s.name, title: s.title, ok: false, startedAt: at, seconds, loadAverageBefore: before, loadAverageAfter: loadAverage(), error };
      log(`── ${s.name}: FAILED after ${seconds.toFixed(1)} s\n${error}`);
    } finally {
      rmSync(scratchDir, { recursive: true, force: true });
    }
    // What is done so far, readable while later suites run.
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(partialFile, `${JSON.stringify({ startedAt, quick, machine, suites }, null, 2)}\n`);
  }
  const record: RunRecord = {
    startedAt,
    finishedAt: new Date().toISOString(),
    quick,
    command: `npm run bench --${quick ? ' --quick' : ''}${only ? ` --only ${only.join(',')}` : ''}${rows !== null ? ` --rows ${rows}` : ''}`,
    machine,
    suites,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(partialFile, `${JSON.stringify(record, null, 2)}\n`);
  if (quick) {
    writeFileSync(join(RESULTS, 'quick-latest.json'), `${JSON.stringify(record, null, 2)}\n`);
    log('results: bench/results/quick-latest.json (docs/BENCHMARKS.md is only written by full runs)');
  } else {
    // A full run of some suites keeps the other suites' last full results.
    const latestFile = join(RESULTS, 'latest.json');
    const previous: RunRecord | null = existsSync(latestFile) ? (JSON.parse(readFileSync(latestFile, 'utf8')) as RunRecord) : null;
    // A suite no longer in bench/suites/index.ts leaves the page with its last results.
    const known = (all: Record<string, SuiteRecord>) => Object.fromEntries(Object.entries(all).filter(([name]) => SUITES.some((s) => s.name === name)));
    const merged: RunRecord = only && previous ? { ...record, suites: known({ ...previous.suites, ...okOnly(suites, previous) }) } : record;
    writeFileSync(latestFile, `${JSON.stringify(merged, null, 2)}\n`);
    const written = writeReport(merged, ROOT);
    log(`results: bench/results/latest.json; wrote ${written.join(', ')}`);
  }
  const failed = Object.values(suites).filter((s) => !s.ok);
  if (failed.length > 0) {
    log(`FAILED: ${failed.map((s) => s.name).join(', ')}`);
    return 1;
  }
  return 0;
}

/** A failed suite does not replace its previous good result in latest.json. */
function okOnly(suites: Record<string, SuiteRecord>, previous: RunRecord): Record<string, SuiteRecord> {
  return Object.fromEntries(Object.entries(suites).filter(([name, s]) => s.ok || !previous.suites[name]));
}

// Ctrl-C: exit through process.exit so every 'exit' hook runs (workers killed, throwaway Postgres stopped).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  },
);

/**
 * Where the durable store's ingest cost goes (issue #12, the state suite's ingest table): one CPU
 * profile (`--cpu-prof`, the main thread) of tidewire's WAL ingest (bench/workers/tidewire-ingest.ts)
 * over the same pre-written 300,000 changes with the durable store and in memory; self time by
 * file and by function. lmdb's writer thread is not in a main-thread profile (its CPU is in the
 * state suite's CPU s per million changes).
 *
 *   node --import tsx bench/state-ingest-profile.ts
 *
 * The figures: docs/BENCHMARKS.md, "Durable state (#12): reading the state suite".
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarizeProfile } from './lib/cpuprofile.ts';
import { INGEST_PUBLICATION, runTidewireIngest } from './lib/ingest-run.ts';
import { INGEST_DDL, INGEST_TABLE, writeIngestWorkload } from './lib/ingest-workload.ts';
import { startBenchPostgres } from './lib/postgres.ts';

const N = 300_000;
const db = await startBenchPostgres();
try {
  await db.query(INGEST_DDL);
  await db.query(`CREATE PUBLICATION ${INGEST_PUBLICATION} FOR TABLE ${INGEST_TABLE}`);
  for (const s of ['p_durable', 'p_memory']) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s]);
  await writeIngestWorkload(db, N);
  const topics = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${INGEST_TABLE}`)).rows[0].n);
  for (const m of ['durable', 'memory']) {
    const dir = mkdtempSync(join(tmpdir(), `prof-${m}-`));
    const r = await runTidewireIngest(db, `p_${m}`, N, topics, { profileDir: dir, stateDir: m === 'durable' ? mkdtempSync(join(tmpdir(), 'prof-state-')) : undefined });
    const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'))!;
    const p = summarizeProfile(join(dir, f), 25);
    console.log(`== ${m}: ${Math.round(N / r.seconds)} changes/s, ${((r.cpuSecondsStreaming / N) * 1e6).toFixed(1)} CPU s/M, profile ${Math.round(p.totalMs)} ms`);
    for (const x of p.files.slice(0, 14)) console.log(`  ${x.percent.toFixed(1).padStart(5)}%  ${x.file}`);
    console.log('  -- functions');
    for (const x of p.functions.slice(0, 16)) console.log(`  ${x.percent.toFixed(1).padStart(5)}%  ${x.name}  ${x.where}`);
  }
} finally {
  await db.stop();
}
process.exit(0);

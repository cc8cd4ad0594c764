/**
 * The state suite's steady-state ingest (durable store and in memory), for two checkouts side by
 * side on one machine: A is another checkout (e.g. `git worktree add /tmp/before <commit>`, with
 * node_modules linked), B this one. One Postgres and one pre-written WAL (bench/lib/ingest-workload.ts)
 * for every run; each checkout runs its own worker (bench/workers/tidewire-ingest.ts); the runs
 * alternate (A-durable, B-durable, A-memory, B-memory, then reversed). Prints CPU s per million
 * changes, medians, and the ratios: what a change to the ingest path moved, on a noisy machine.
 *
 *   node --import tsx bench/ingest-ab.ts /tmp/before [reps, default 3]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
const [a, repsText] = process.argv.slice(2);
if (!a) throw new Error('usage: node --import tsx bench/ingest-ab.ts <other checkout> [reps]');
const b = fileURLToPath(new URL('..', import.meta.url));
const reps = Number(repsText ?? 3);
const N = 300_000;
const lib = async (tree: string) => ({
  run: (await import(join(tree, 'bench/lib/ingest-run.ts'))) as typeof import('./lib/ingest-run.ts'),
  wl: (await import(join(tree, 'bench/lib/ingest-workload.ts'))) as typeof import('./lib/ingest-workload.ts'),
  pg: (await import(join(tree, 'bench/lib/postgres.ts'))) as typeof import('./lib/postgres.ts'),
});
const A = await lib(a);
const B = await lib(b);
const db = await A.pg.startBenchPostgres();
try {
  await db.query(A.wl.INGEST_DDL);
  await db.query(`CREATE PUBLICATION ${A.run.INGEST_PUBLICATION} FOR TABLE ${A.wl.INGEST_TABLE}`);
  const kinds = ['A-durable', 'B-durable', 'A-memory', 'B-memory'];
  const slots: string[] = [];
  for (let i = 0; i < reps; i++) for (const k of kinds) slots.push(`ab_${k.replace('-', '_').toLowerCase()}_${i}`);
  for (const s of slots) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s]);
  await A.wl.writeIngestWorkload(db, N);
  const topics = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${A.wl.INGEST_TABLE}`)).rows[0].n);
  const res: Record<string, number[]> = {};
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? kinds : [...kinds].reverse();
    for (const k of order) {
      const L = k.startsWith('A') ? A : B;
      const durable = k.endsWith('durable');
      const r = await L.run.runTidewireIngest(db, `ab_${k.replace('-', '_').toLowerCase()}_${i}`, N, topics, { stateDir: durable ? mkdtempSync(join(tmpdir(), 'ab-state-')) : undefined });
      const cpu = (r.cpuSecondsStreaming / N) * 1e6;
      (res[k] ??= []).push(cpu);
      console.log(`${k} ${i + 1}: ${cpu.toFixed(1)} CPU s/M, ${Math.round(N / r.seconds)} changes/s`);
    }
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)];
  for (const k of kinds) console.log(`${k}: median ${med(res[k]).toFixed(1)} (${res[k].map((v) => v.toFixed(1)).join(', ')})`);
  console.log(`ratio durable/memory A ${(med(res['A-durable']) / med(res['A-memory'])).toFixed(2)}, B ${(med(res['B-durable']) / med(res['B-memory'])).toFixed(2)}; B/A durable ${(med(res['B-durable']) / med(res['A-durable'])).toFixed(2)}`);
} finally {
  await db.stop();
}
process.exit(0);

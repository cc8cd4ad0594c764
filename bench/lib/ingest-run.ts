/** Running tidewire's WAL ingest in a child process, measured like the Debezium peer (CPU, peak RSS from /proc). */
import { INGEST_TABLE } from './ingest-workload.ts';
import { activePid, type BenchPostgres } from './postgres.ts';
import { ProcWatch } from './proc.ts';
import { Worker } from './worker.ts';

export const INGEST_PUBLICATION = 'bench_ingest';
const PUB = INGEST_PUBLICATION;

export interface TidewireIngest {
  changes: number;
  topics: number;
  seconds: number;
  secondsFromFirstApply: number;
  secondsToStreaming: number;
  cpuSecondsStreaming: number;
  cpuSecondsProcess: number;
  peakRssBytes: number;
  wallSeconds: number;
  walsenderCpuSeconds: number;
  /** With a state dir: what the store held at the end. */
  stored: { topics: number; writes: number; position: string | null } | null;
}

/** Samples the CPU of the walsender serving `slot` while a reader streams from it. */
export function watchWalsender(pg: BenchPostgres, slot: string): { stop(): Promise<number> } {
  let watch: ProcWatch | null = null;
  let cpu = 0;
  let stopped = false;
  const tick = async () => {
    while (!stopped) {
      if (!watch) {
        const pid = await activePid(pg, slot).catch(() => null);
        if (pid) watch = new ProcWatch(pid, 200);
      } else {
        watch.sample();
        cpu = Math.max(cpu, watch.cpu);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const loop = tick();
  return {
    async stop() {
      stopped = true;
      await loop;
      if (watch) {
        watch.stop();
        cpu = Math.max(cpu, watch.cpu);
      }
      return cpu;
    },
  };
}

/** Runs tidewire's ingest (bench/workers/tidewire-ingest.ts) from `slot` until `expected` changes are applied; checks the topic count. */
export async function runTidewireIngest(
  pg: BenchPostgres,
  slot: string,
  expected: number,
  topics: number,
  opts: { profileDir?: string | null; journal?: string; stateDir?: string } = {},
): Promise<TidewireIngest> {
  const profileDir = opts.profileDir ?? null;
  const t0 = performance.now();
  const nodeArgs = ['--max-old-space-size=4096'];
  if (profileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  const w = await Worker.start('tidewire-ingest', [], { nodeArgs });
  const ws = watchWalsender(pg, slot);
  try {
    const r = await w.call<Omit<TidewireIngest, 'wallSeconds' | 'walsenderCpuSeconds'>>('run', {
      pgUrl: pg.url,
      slot,
      publication: PUB,
      table: `public.${INGEST_TABLE}`,
      path: 'items/{id}',
      expected,
      timeoutSec: 900,
      journal: opts.journal,
      stateDir: opts.stateDir,
    });
    const walsenderCpuSeconds = await ws.stop();
    await w.stop();
    if (r.changes !== expected) throw new Error(`tidewire applied ${r.changes} changes, expected ${expected}`);
    if (r.topics !== topics) throw new Error(`tidewire holds ${r.topics} topics but the table has ${topics} rows`);
    if (opts.stateDir && r.stored?.topics !== topics) throw new Error(`the state store holds ${r.stored?.topics} topics but the table has ${topics} rows`);
    return {
      ...r,
      cpuSecondsProcess: Math.max(r.cpuSecondsProcess, w.watch.cpu),
      peakRssBytes: Math.max(r.peakRssBytes, w.watch.hwm),
      wallSeconds: (performance.now() - t0) / 1000,
      walsenderCpuSeconds,
    };
  } finally {
    await ws.stop();
    await w.stop();
  }
}


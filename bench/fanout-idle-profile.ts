/**
 * Why 5,000 clients at 10 changes/s cost the server half a core (issue #16, item 1): the scaling
 * suite's client step (bench/suites/scaling.ts) at its lowest rate, alone and longer. The
 * distribution server without Postgres (bench/workers/dist-server.ts, 100 topics `items/{id}`),
 * 5,000 raw WebSocket clients (bench/workers/ws-clients.ts) each subscribed to `items/**`, the
 * server's own source updating 10 topics/s (one batch per change, as a 5 ms writer tick gives).
 * Reports the server's cores (bench/lib/proc.ts CpuWindow) over an unprofiled window, then a CPU
 * profile (bench/lib/profiler.ts) of a second window, self time by function and by file.
 *
 *   node --import tsx bench/fanout-idle-profile.ts
 *   node --import tsx bench/fanout-idle-profile.ts --trees /tmp/base,. --reps 3   # A/B, alternating
 *
 * --clients (5000), --rate (10 changes/s), --seconds (15), --tick (5: the source applies what is due
 * every tick ms; 500 puts 5 changes in each batch, so each client gets 2 frames/s), --flush (the
 * server's flushIntervalMs; default the config's, 2 ms), --no-profile. With --trees each rep runs
 * A then B (B then A on odd reps), each on its own server and clients; without --no-profile the
 * profile is taken for trees whose dist-server has profileStart (bench/lib/profiler.ts).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { summarizeProfile } from './lib/cpuprofile.ts';
import { CpuWindow } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { Worker } from './lib/worker.ts';

const { values: args } = parseArgs({
  options: {
    trees: { type: 'string', default: '.' },
    reps: { type: 'string', default: '1' },
    clients: { type: 'string', default: '5000' },
    rate: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '15' },
    'no-profile': { type: 'boolean', default: false },
    tick: { type: 'string', default: '5' },
    flush: { type: 'string' },
  },
});
const trees = args.trees.split(',').map((t) => resolve(t));
const n = Number(args.clients);
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const TOPICS = 100;
const tickMs = Number(args.tick);
const flushIntervalMs = args.flush === undefined ? undefined : Number(args.flush);
/** utime and stime of a process, seconds (/proc/<pid>/stat; 100 ticks a second). */
function userSys(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function once(tree: string, profile: boolean): Promise<{ cores: number; clientsCores: number; deliveries: number; frames: number; p50: number; p99: number }> {
  const dir = join(tree, 'bench/workers/');
  const server = await Worker.start('dist-server', [], { dir, nodeArgs: ['--expose-gc', '--max-old-space-size=8192'] });
  const clients = await Worker.start('ws-clients', [], { nodeArgs: ['--max-old-space-size=8192'] });
  try {
    const { port } = await server.call<{ port: number }>('start', { topics: TOPICS, flushIntervalMs });
    const c = await clients.call<{ seconds: number }>('connect', { url: `ws://127.0.0.1:${port}/ws`, n, protocol: 'tidewire', selector: 'items/**', probes: 50, concurrency: 200 });
    await clients.call('probes', { count: 50 });
    await server.call('run', { rate, seconds: 2, tickMs }); // warm-up
    await sleep(300);
    await clients.call('reset');
    const cpu = new CpuWindow({ server: server.child.pid!, clients: clients.child.pid! });
    const t0 = userSys(server.child.pid!);
    const w = await server.call<{ sent: number; seconds: number }>('run', { rate, seconds, tickMs });
    await sleep(300);
    const used = cpu.end();
    const t1 = userSys(server.child.pid!);
    const win = await clients.call<{ deliveries: number; frames: number; latencyMs: { p50: number; p99: number } }>('collect');
    const r = { cores: used.cores.server, clientsCores: used.cores.clients, deliveries: win.deliveries / w.seconds, frames: win.frames / w.seconds, p50: win.latencyMs.p50, p99: win.latencyMs.p99 };
    console.log(`${tree}: ${n} clients connected in ${c.seconds.toFixed(1)} s; ${w.sent} changes in ${w.seconds.toFixed(1)} s: ${Math.round(r.deliveries)} deliveries/s, ${Math.round(r.frames)} frames/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms; cores: server ${r.cores} (user ${((t1.user - t0.user) / used.seconds).toFixed(2)}, system ${((t1.sys - t0.sys) / used.seconds).toFixed(2)}), clients ${r.clientsCores}, other ${used.otherCores}`);
    if (profile) {
      const file = join(mkdtempSync(join(tmpdir(), 'fanout-prof-')), 'server.cpuprofile');
      try {
        await server.call('profileStart', { intervalUs: 200 });
      } catch {
        console.log(`${tree}: its dist-server has no profileStart: no profile`);
        return r;
      }
      await server.call('run', { rate, seconds, tickMs });
      await server.call('profileStop', { file });
      const s = summarizeProfile(file, 25);
      console.log(`profile (${file}): ${s.totalMs} ms of samples over ${seconds} s, not idle`);
      console.log('  self time by function:');
      for (const f of s.functions) console.log(`    ${String(f.selfMs).padStart(6)} ms ${f.percent.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
      console.log('  self time by file:');
      for (const f of s.files) console.log(`    ${String(f.selfMs).padStart(6)} ms ${f.percent.toFixed(1).padStart(5)}%  ${f.file}`);
    }
    return r;
  } finally {
    await clients.stop();
    await server.stop();
  }
}

const results = new Map<string, number[]>(trees.map((t) => [t, []]));
for (let rep = 0; rep < Number(args.reps); rep++) {
  const order = rep % 2 === 0 ? trees : [...trees].reverse();
  for (const t of order) results.get(t)!.push((await once(t, !args['no-profile'])).cores);
}
for (const [t, cores] of results) console.log(`${t}: server cores ${cores.join(', ')}; median ${median(cores)}`);

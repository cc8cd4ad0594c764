/**
 * Where a 1,000,000-topic subscription's initial load spends its time (issue #12: ≤ 10 s), and
 * whether a change makes it faster: the state suite's part 4 (bench/suites/state.ts,
 * loadSubscription) without the rest of the suite. One Postgres, one 1M-row order table, a
 * durable TidewireService (bench/workers/service.ts) per checkout, restarted from its own state
 * dir for each load; an SDK client (bench/workers/sdk-client.ts) subscribes to `orders/**` while
 * a writer updates 2,000 rows/s. Time from subscribe to `subscribed`, and the cores used by the
 * server and the client (CPU seconds too: on a shared machine they move less than the wall time).
 *
 *   node --import tsx bench/subscription-profile.ts --profile          # this checkout, CPU profiles
 *   node --import tsx bench/subscription-profile.ts --trees /tmp/base,. --reps 5   # A/B, alternating
 *
 * --trees: checkouts whose service and client are run (the first is A, the second B; default: this
 * one). Loads alternate A B B A A B …, and the ratio is the median of each pair's B ÷ A.
 * --profile: a CPU profile (main thread, bench/lib/profiler.ts) of the server and of the client
 * during each load; self time by function and by file is printed (the checkouts need
 * bench/lib/profiler.ts). --rows: the table's rows (default 1,000,000). --first-start: each load on
 * a service just started on a new state dir (its snapshot just taken), as in the state suite,
 * instead of one restarted from its state dir.
 *
 * Every load is checked as the suite checks it: live with every topic, no disconnect, no removal
 * or version regression, and once the writer stopped the client holds exactly the table.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { summarizeProfile } from './lib/cpuprofile.ts';
import { type BenchPostgres, startBenchPostgres } from './lib/postgres.ts';
import { CpuWindow } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { Worker } from './lib/worker.ts';
import { clientEqualsTable, createTable } from './suites/state.ts';
import { freePort } from '../test/support/postgres.ts';

const { values: args } = parseArgs({
  options: {
    trees: { type: 'string', default: '.' },
    reps: { type: 'string', default: '3' },
    rows: { type: 'string', default: '1000000' },
    profile: { type: 'boolean', default: false },
    'first-start': { type: 'boolean', default: false },
  },
});
const trees = args.trees.split(',').map((t) => resolve(t));
const reps = Number(args.reps);
const rows = Number(args.rows);
const TABLE = 'state_mid';
const WRITER_RATE = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (l: string) => console.log(l);

interface Tree {
  readonly label: string;
  readonly workers: string;
  stateDir: string;
  slot: string;
  /** Per load: seconds to live, and CPU seconds the server and the client used during it. */
  readonly loads: Array<{ seconds: number; server: number; client: number }>;
}

function serviceConfig(db: BenchPostgres, t: Tree, port: number): object {
  return {
    server: { host: '127.0.0.1', port },
    postgres: { url: db.url, slot: t.slot, publication: t.slot, tables: [{ table: `public.${TABLE}`, path: 'orders/{customer}/{id}' }] },
    state: { dir: t.stateDir },
    log: { level: 'warn' },
  };
}

/** Starts the tree's service on its state dir (the first time: a snapshot of the table) and waits for /ready. */
async function startService(db: BenchPostgres, t: Tree): Promise<{ w: Worker; port: number }> {
  const port = await freePort();
  const w = await Worker.start('service', [], { dir: t.workers, nodeArgs: ['--max-old-space-size=4096', '--expose-gc'] });
  const started = w.call<{ topics: number }>('start', { config: serviceConfig(db, t, port), logLevel: 'warn' });
  const st = await started;
  if (st.topics !== rows) throw new Error(`${t.label}: the service holds ${st.topics} topics, the table has ${rows} rows`);
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null);
    if (r?.status === 200) return { w, port };
    await sleep(50);
  }
}

async function stopService(w: Worker): Promise<void> {
  w.child.kill('SIGTERM');
  await w.exited;
}

async function load(db: BenchPostgres, t: Tree, rep: number): Promise<void> {
  if (args['first-start']) {
    t.stateDir = mkdtempSync(join(tmpdir(), 'sub-state-'));
    t.slot = `${t.slot.replace(/_r\d+$/, '')}_r${rep}`;
  }
  const { w: server, port } = await startService(db, t);
  const writer = await Worker.start('writer');
  const client = await Worker.start('sdk-client', [], { dir: t.workers, nodeArgs: ['--max-old-space-size=8192', '--expose-gc'] });
  try {
    // Let the restarted service catch up with what was written while it was down.
    await sleep(1000);
    const writing = writer.call<{ sent: number }>('run', { pgUrl: db.url, table: TABLE, rows, rate: WRITER_RATE, seconds: 300, set: 'v = v + 1, qty = (qty + 1) % 100' });
    await sleep(500);
    if (args.profile) await Promise.all([server.call('profileStart', {}), client.call('profileStart', {})]);
    const cpuWindow = new CpuWindow({ server: server.child.pid!, client: client.child.pid! });
    const sub = await client.call<{ startedAt: number; liveAt: number; topics: number; pages: number }>('subscribe', { url: `ws://127.0.0.1:${port}/ws`, selector: 'orders/**', timeoutMs: 300_000 });
    const window = cpuWindow.end();
    const seconds = (sub.liveAt - sub.startedAt) / 1000;
    const cpu = { server: window.cores.server * window.seconds, client: window.cores.client * window.seconds };
    t.loads.push({ seconds, ...cpu });
    log(`${t.label} load ${rep + 1}: live in ${seconds.toFixed(2)} s, ${sub.pages} loading messages; CPU s: server ${cpu.server.toFixed(2)}, client ${cpu.client.toFixed(2)}; cores: server ${window.cores.server}, client ${window.cores.client}, others ${window.otherCores}`);
    if (args.profile) {
      for (const [who, wk] of [['server', server], ['client', client]] as const) {
        const file = join(tmpdir(), `subscription-${who}-${process.pid}-${rep}.cpuprofile`);
        await wk.call('profileStop', { file });
        const p = summarizeProfile(file, 30);
        log(`  == ${who} profile: ${p.totalMs} ms busy (${file})`);
        for (const x of p.files.slice(0, 12)) log(`    ${x.percent.toFixed(1).padStart(5)}%  ${x.file}`);
        log('    -- functions (self time)');
        for (const x of p.functions.slice(0, 25)) log(`    ${x.percent.toFixed(1).padStart(5)}%  ${x.name}  ${x.where}`);
      }
    }
    await sleep(500);
    await writer.call('stop');
    await writing;
    if (sub.topics !== rows) throw new Error(`${t.label}: live with ${sub.topics} topics, the table has ${rows} rows`);
    const ev = await client.call<{ disconnects: unknown[]; regressions: number; removals: number }>('events');
    if (ev.disconnects.length > 0 || ev.regressions > 0 || ev.removals > 0) throw new Error(`${t.label}: ${JSON.stringify({ disconnects: ev.disconnects, regressions: ev.regressions, removals: ev.removals })}`);
    await clientEqualsTable(client, db, TABLE, 'true', `${t.label} after the load and the writes`);
  } finally {
    await client.stop();
    await writer.stop();
    await stopService(server);
    if (args['first-start']) await db.query('SELECT pg_drop_replication_slot($1)', [t.slot]);
  }
}

const db = await startBenchPostgres();
try {
  await createTable(db, TABLE, rows, log);
  const list: Tree[] = trees.map((dir, i) => ({
    label: trees.length === 1 ? 'load' : `${String.fromCharCode(65 + i)} (${dir})`,
    workers: join(dir, 'bench/workers'),
    stateDir: mkdtempSync(join(tmpdir(), `sub-state-${i}-`)),
    slot: `sub_prof_${i}`,
    loads: [],
  }));
  // The first start of each reads the table (a snapshot) into its state dir; every load restarts
  // from it, unless --first-start: then every load runs on a service just started on a new state
  // dir (as the state suite's loads do: after the first start, nothing restarted).
  if (!args['first-start']) for (const t of list) await stopService((await startService(db, t)).w);
  for (let r = 0; r < reps; r++) for (const t of r % 2 === 0 ? list : [...list].reverse()) await load(db, t, r);
  const KEYS = ['seconds', 'server', 'client'] as const;
  const NAMES = { seconds: 'seconds to live', server: 'server CPU s', client: 'client CPU s' };
  for (const t of list) {
    log(`${t.label}:`);
    for (const k of KEYS) log(`  ${NAMES[k]}: median ${median(t.loads.map((l) => l[k])).toFixed(2)} (${t.loads.map((l) => l[k].toFixed(2)).join(', ')})`);
  }
  if (list.length === 2) {
    // Pairs in the order they ran (A B, then B A, ...): each pair shares the machine's load of its moment.
    for (const k of KEYS) {
      const ratios = list[0].loads.map((a, i) => list[1].loads[i][k] / a[k]);
      log(`B ÷ A, ${NAMES[k]}: median of pairs ${median(ratios).toFixed(3)} (${ratios.map((x) => x.toFixed(3)).join(', ')})`);
    }
  }
} finally {
  await db.stop();
}
process.exit(0);

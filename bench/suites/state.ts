/**
 * state — durable topic state (issue #12) against state in memory, side by side in one run:
 *  1. restart of a large table (`--rows`, default 10,000,000): a TidewireService in its own
 *     process (bench/workers/service.ts) with `state.dir` vs `state: { memory: true }`; an SDK
 *     client (bench/workers/sdk-client.ts, its own process) subscribed before the restart
 *     reconnects. Time from the new process's fork to `/ready` (200) and to the client's `resumed`;
 *     rows are updated while tidewire is down and the client must end equal to the table. The
 *     durable side restarts after SIGTERM (graceful) and after kill -9; it must not read the table
 *     again (pg_stat_user_tables.seq_scan unchanged, /health's `startedBy: resumed`), the
 *     in-memory side must (seq_scan grows) — so the check measures something.
 *  2. steady-state ingest: the same pre-written WAL read by tidewire's streaming pieces
 *     (bench/workers/tidewire-ingest.ts) with the durable store (LmdbStateStore behind the
 *     StateJournal, LSN acknowledged once durable, the run ends when the last change is durable)
 *     and in memory, alternating; changes/s and CPU s per million changes, medians and the ratio.
 *  3. heap and RSS per topic after a load and full GCs (`--expose-gc`), both ways, at 1,000,000
 *     rows and at the restart table's size (after the first start and after the restart).
 *  4. initial load of a 1,000,000-topic subscription into one SDK client while a writer keeps
 *     updating the table: time to `subscribed` (live), pages (`loading` messages), the server's
 *     peak RSS, the send queue's peak (sampled every 5 ms) against `sendQueueBytes`, no
 *     disconnect; once the writer stops the client's state must equal the table.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { mib, num, ratio } from '../lib/format.ts';
import { INGEST_PUBLICATION, type TidewireIngest, runTidewireIngest } from '../lib/ingest-run.ts';
import { INGEST_DDL, INGEST_TABLE, writeIngestWorkload } from '../lib/ingest-workload.ts';
import { type BenchPostgres, serverVersion, startBenchPostgres } from '../lib/postgres.ts';
import { CpuWindow, loadAverage } from '../lib/proc.ts';
import { median, pairRatios } from '../lib/stats.ts';
import { Worker } from '../lib/worker.ts';
import type { Suite, SuiteResult, Table, Target } from '../suite.ts';
import { freePort } from '../../test/support/postgres.ts';

/** The server's default send queue per client (schemas/config.schema.json, server.sendQueueBytes). */
const SEND_QUEUE_BYTES = 8 * 2 ** 20;
const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Mode = 'durable' | 'memory';
const MODES: readonly Mode[] = ['durable', 'memory'];
const MODE_LABEL: Record<Mode, string> = { durable: 'durable store (state.dir)', memory: 'in memory (state.memory: true)' };

/** An order-like row (bench/lib/tables.ts's columns), written in chunks of a million. */
export async function createTable(db: BenchPostgres, table: string, rows: number, log: (l: string) => void): Promise<{ seconds: number; bytes: number }> {
  const t0 = performance.now();
  await db.query(`
    CREATE TABLE ${table} (
      id int8 PRIMARY KEY, customer int4 NOT NULL, status text NOT NULL, qty int4 NOT NULL, price numeric(10,2) NOT NULL,
      currency text NOT NULL, ship_to text NOT NULL, note text, flag bool NOT NULL, v int8 NOT NULL DEFAULT 0,
      sent_us int8 NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now())`);
  const chunk = 1_000_000;
  for (let i = 0; i < rows; i += chunk) {
    await db.query(`
      INSERT INTO ${table} (id, customer, status, qty, price, currency, ship_to, note, flag)
        SELECT i, (i % 97)::int4, 'open', (i % 10)::int4, (i % 1000) / 10.0, 'EUR',
               (i % 500) || ' Harbour Street, Flat ' || (i % 40) || ', Portsmouth PO1 ' || (i % 9) || 'AB',
               'leave with the neighbour if nobody answers (order ' || i || ')', i % 2 = 0
          FROM generate_series(${i + 1}::int8, ${Math.min(rows, i + chunk)}::int8) AS i`);
    if (rows > chunk) log(`state: ${table}: ${num(Math.min(rows, i + chunk))} of ${num(rows)} rows written`);
  }
  await db.query(`VACUUM ANALYZE ${table}`);
  const bytes = Number((await db.query<{ b: string }>(`SELECT pg_total_relation_size('${table}') AS b`)).rows[0].b);
  return { seconds: (performance.now() - t0) / 1000, bytes };
}

interface Digest {
  size: number;
  sums: Record<string, number>;
  weighted: Record<string, number>;
}

/** What a client holding `where`'s rows must hold (reads the table: a sequential scan). */
async function tableDigest(db: BenchPostgres, table: string, where: string): Promise<Digest> {
  const r = await db.query<Record<string, string>>(
    `SELECT count(*) n, coalesce(sum(v), 0) sv, coalesce(sum(v * (id % 1000)), 0) wv, coalesce(sum(qty), 0) sq, coalesce(sum(qty * (id % 1000)), 0) wq FROM ${table} WHERE ${where}`,
  );
  const x = r.rows[0];
  return { size: Number(x.n), sums: { v: Number(x.sv), qty: Number(x.sq) }, weighted: { v: Number(x.wv), qty: Number(x.wq) } };
}

const sameDigest = (a: Digest, b: Digest) => a.size === b.size && ['v', 'qty'].every((f) => a.sums[f] === b.sums[f] && a.weighted[f] === b.weighted[f]);

/** Waits until the client holds exactly what the table holds; throws with both digests otherwise. */
export async function clientEqualsTable(client: Worker, db: BenchPostgres, table: string, where: string, what: string, timeoutMs = 120_000): Promise<Digest> {
  const want = await tableDigest(db, table, where);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const got = await client.call<Digest & { live: boolean }>('digest', { numeric: ['v', 'qty'] });
    if (got.live && sameDigest(got, want)) return want;
    if (performance.now() > deadline) throw new Error(`${what}: the client holds ${JSON.stringify(got)}, the table ${JSON.stringify(want)}`);
    await sleep(250);
  }
}

/** Sequential scans of a table so far; Postgres publishes backend counters within about a second. */
async function seqScans(db: BenchPostgres, table: string): Promise<number> {
  await sleep(1200);
  await db.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await db.query<{ n: string }>('SELECT seq_scan::text AS n FROM pg_stat_user_tables WHERE relname = $1', [table]);
  return Number(rows[0].n);
}

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

interface Started {
  w: Worker;
  /** Wall-clock ms at the fork. */
  forkedAt: number;
  /** Seconds from the fork to GET /ready answering 200. */
  readySeconds: number;
  /** Seconds from the fork to the worker calling start() (Node, tsx, the service's imports). */
  bootSeconds: number;
  /** The start() call's promise (resolves with the service's phase marks). */
  started: Promise<{ marks: Record<string, number>; topics: number }>;
}

/** Forks a TidewireService on `port` and waits for /ready; the fork is the "process start". */
async function startService(config: object, port: number, heapMiB: number, timeoutMs: number): Promise<Started> {
  const forkedAt = wall();
  const w = await Worker.start('service', [], { nodeArgs: [`--max-old-space-size=${heapMiB}`, '--expose-gc'] });
  const bootSeconds = (wall() - forkedAt) / 1000;
  const started = w.call<{ marks: Record<string, number>; topics: number }>('start', { config, logLevel: 'info' });
  let failure: unknown = null;
  started.catch((err) => (failure = err));
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (failure) throw failure;
    const r = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
    if (r?.status === 200) break;
    if (performance.now() > deadline) {
      await w.stop();
      throw new Error(`the service on port ${port} was not ready after ${timeoutMs / 1000} s`);
    }
    await sleep(50);
  }
  return { w, forkedAt, bootSeconds, readySeconds: (wall() - forkedAt) / 1000, started };
}

/** Stops the service worker as an operator or a crash would: SIGTERM (graceful, then exit) or SIGKILL. */
async function stopService(w: Worker, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const timer = setTimeout(() => w.child.kill('SIGKILL'), 120_000);
  w.child.kill(signal);
  await w.exited;
  clearTimeout(timer);
}

interface Memory {
  heapUsed: number;
  rss: number;
  /** RSS that is the process's own memory (Linux RssAnon), and file-backed (RssFile + RssShmem: the store's mapped pages). */
  rssAnon?: number;
  rssFile?: number;
  external: number;
  arrayBuffers: number;
}

/** Updates rows by primary key (an index scan: seq_scan counts only whole-table reads). */
async function touchRows(url: string, table: string, ids: number[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('SET enable_seqscan = off');
    await c.query(`UPDATE ${table} SET v = v + 1, qty = (qty + 1) % 100 WHERE id = ANY($1::int8[])`, [ids]);
  } finally {
    await c.end();
  }
}

function serviceConfig(db: BenchPostgres, mode: Mode, table: string, path: string, port: number, slot: string, stateDir: string): object {
  return {
    server: { host: '127.0.0.1', port },
    postgres: { url: db.url, slot, publication: slot, tables: [{ table: `public.${table}`, path }] },
    state: mode === 'durable' ? { dir: stateDir } : { memory: true },
    log: { level: 'info' },
  };
}

interface RestartRun {
  mode: Mode;
  how: 'first start' | 'SIGTERM' | 'kill -9';
  readySeconds: number;
  bootSeconds: number;
  resumedSeconds: number | null;
  resumed: string | null;
  epochChanged: boolean | null;
  startedBy: string | null;
  seqScansDuring: number | null;
  peakRssBytes: number;
  memory: Memory;
  topics: number;
  /** Seconds from the service's start() to its first log line of each kind (e.g. `state loaded`). */
  marks: Record<string, number>;
}

export const suite: Suite = {
  name: 'state',
  title: 'Durable state vs in memory: restart, steady-state ingest, memory per topic, a 1M-topic subscription',
  async run(ctx): Promise<SuiteResult> {
    const quick = ctx.quick;
    const rows = ctx.rows ?? (quick ? 20_000 : 10_000_000);
    const midRows = quick ? 20_000 : 1_000_000;
    const ingestChanges = quick ? 20_000 : 300_000;
    const ingestReps = quick ? 1 : 3;
    const writerRate = quick ? 500 : 2000;
    const subscriptionReps = quick ? 1 : 3;
    const bigTimeout = Math.max(600_000, rows * 0.2);
    const heapMiB = (n: number) => Math.max(4096, Math.ceil((n * 1400) / 2 ** 20));
    const load = { start: loadAverage(), afterIngest: [0, 0, 0] as number[], afterMid: [0, 0, 0] as number[] };
    const db = await startBenchPostgres();
    try {
      const pgVersion = await serverVersion(db);

      // ── 2. Steady-state ingest, store on vs in memory (alternating, pre-written WAL).
      await db.query(INGEST_DDL);
      await db.query(`CREATE PUBLICATION ${INGEST_PUBLICATION} FOR TABLE ${INGEST_TABLE}`);
      const slots = Array.from({ length: ingestReps }, (_, i) => ({ durable: `st_ing_durable_${i}`, memory: `st_ing_memory_${i}` }));
      for (const s of slots) for (const m of MODES) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s[m]]);
      const writeSeconds = await writeIngestWorkload(db, ingestChanges);
      const ingestTopics = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${INGEST_TABLE}`)).rows[0].n);
      ctx.log(`state: ingest: ${num(ingestChanges)} changes written in ${writeSeconds.toFixed(1)} s; ${ingestReps} alternating run(s) each way`);
      const ingest: Record<Mode, TidewireIngest[]> = { durable: [], memory: [] };
      for (let i = 0; i < ingestReps; i++) {
        for (const m of i % 2 === 0 ? MODES : [...MODES].reverse()) {
          const stateDir = m === 'durable' ? mkdtempSync(join(ctx.scratchDir, 'ingest-state-')) : undefined;
          const r = await runTidewireIngest(db, slots[i][m], ingestChanges, ingestTopics, { stateDir });
          if (m === 'durable' && !r.stored?.position) throw new Error('the durable ingest run stored no position');
          ingest[m].push(r);
          ctx.log(`state: ingest ${m} ${i + 1}: ${num(ingestChanges / r.seconds)} changes/s, ${num((r.cpuSecondsStreaming / ingestChanges) * 1e6, 1)} CPU s/M${r.stored ? `, ${num(r.stored.writes)} store writes` : ''}`);
        }
      }
      for (const s of slots) for (const m of MODES) await db.query('SELECT pg_drop_replication_slot($1)', [s[m]]);
      await db.query(`DROP PUBLICATION ${INGEST_PUBLICATION}`);
      await db.query(`DROP TABLE ${INGEST_TABLE}`);
      load.afterIngest = loadAverage();
      const rate = (m: Mode) => ingest[m].map((x) => ingestChanges / x.seconds);
      const cpuPerM = (m: Mode) => ingest[m].map((x) => (x.cpuSecondsStreaming / ingestChanges) * 1e6);
      const cpuRatio = median(pairRatios(cpuPerM('durable'), cpuPerM('memory')));
      const rateRatio = median(pairRatios(rate('durable'), rate('memory')));

      // ── 3 and 4. A 1M-row table: heap and RSS per topic both ways; the 1M-topic subscription load.
      const MID = 'state_mid';
      const midTable = await createTable(db, MID, midRows, ctx.log);
      ctx.log(`state: ${num(midRows)} rows (${mib(midTable.bytes)}) in ${midTable.seconds.toFixed(0)} s`);
      const midMemory = {} as Record<Mode, { readySeconds: number; memory: Memory; topics: number; peakRssBytes: number }>;
      let subscription: Record<string, unknown> | null = null;
      for (const m of MODES) {
        const port = await freePort();
        const s = await startService(serviceConfig(db, m, MID, 'orders/{customer}/{id}', port, `st_mid_${m}`, mkdtempSync(join(ctx.scratchDir, 'mid-state-'))), port, heapMiB(midRows), bigTimeout);
        try {
          const st = await s.started;
          if (st.topics !== midRows) throw new Error(`${m}: the service holds ${st.topics} topics, the table has ${midRows} rows`);
          const memory = await s.w.call<Memory>('memory');
          s.w.watch.sample();
          midMemory[m] = { readySeconds: s.readySeconds, memory, topics: st.topics, peakRssBytes: s.w.watch.hwm };
          ctx.log(`state: ${m}, ${num(midRows)} topics: ready in ${s.readySeconds.toFixed(1)} s; heap ${mib(memory.heapUsed)}, RSS ${mib(memory.rss)} after GC`);
          if (m === 'durable') {
            const loads: Array<Record<string, unknown>> = [];
            for (let i = 0; i < subscriptionReps; i++) loads.push(await loadSubscription(ctx, db, s, port, midRows, writerRate));
            const pick = (k: string) => loads.map((l) => l[k] as number);
            subscription = {
              ...loads[0],
              loads,
              loadSeconds: median(pick('loadSeconds')),
              pages: median(pick('pages')),
              peakRss: Math.max(...pick('peakRss')),
              serverCores: median(pick('serverCores')),
              clientCores: median(pick('clientCores')),
              machineBusy: median(pick('machineBusy')),
              otherCores: median(pick('otherCores')),
              writesThroughout: loads.every((l) => l.writesThroughout),
              queuePeak: (loads.at(-1) as { queuePeak: unknown }).queuePeak,
            };
          }
        } finally {
          await stopService(s.w, 'SIGTERM');
        }
      }
      await db.query(`DROP TABLE ${MID}`);
      load.afterMid = loadAverage();

      // ── 1 (and 3 at this size). Restart of the big table: durable vs re-snapshot.
      const BIG = 'state_items';
      const bigTable = await createTable(db, BIG, rows, ctx.log);
      ctx.log(`state: ${num(rows)} rows (${mib(bigTable.bytes)}) in ${bigTable.seconds.toFixed(0)} s`);
      const CUSTOMER = 7;
      const where = `customer = ${CUSTOMER}`;
      const watched = (await tableDigest(db, BIG, where)).size;
      const restarts: RestartRun[] = [];
      const loadAtRestart: Record<Mode, number[]> = { durable: [], memory: [] };
      for (const m of MODES) {
        loadAtRestart[m] = loadAverage();
        const port = await freePort();
        const config = serviceConfig(db, m, BIG, 'items/{customer}/{id}', port, `st_big_${m}`, mkdtempSync(join(ctx.scratchDir, 'big-state-')));
        let s = await startService(config, port, heapMiB(rows), bigTimeout);
        const client = await Worker.start('sdk-client', [], { nodeArgs: ['--max-old-space-size=4096', '--expose-gc'] });
        try {
          const first = await s.started;
          if (first.topics !== rows) throw new Error(`${m}: the service holds ${first.topics} topics, the table has ${rows} rows`);
          const mem0 = await s.w.call<Memory>('memory');
          s.w.watch.sample();
          restarts.push({ mode: m, how: 'first start', readySeconds: s.readySeconds, bootSeconds: s.bootSeconds, resumedSeconds: null, resumed: null, epochChanged: null, startedBy: (await getJson(`http://127.0.0.1:${port}/health`)).body?.sources?.[0]?.startedBy ?? null, seqScansDuring: null, peakRssBytes: s.w.watch.hwm, memory: mem0, topics: first.topics, marks: first.marks });
          ctx.log(`state: ${m}: first start ready in ${s.readySeconds.toFixed(1)} s, heap ${mib(mem0.heapUsed)} after GC`);
          const sub = await client.call<{ topics: number }>('subscribe', { url: `ws://127.0.0.1:${port}/ws`, selector: `items/${CUSTOMER}/**` });
          if (sub.topics !== watched) throw new Error(`${m}: the client holds ${sub.topics} topics, the table has ${watched} rows of customer ${CUSTOMER}`);
          const resumes: Array<{ at: number; resumed: string; epochChanged: boolean }> = [];
          client.on('resumed', (d) => resumes.push(d as (typeof resumes)[number]));
          for (const how of m === 'durable' ? (['SIGTERM', 'kill -9'] as const) : (['SIGTERM'] as const)) {
            const scansBefore = await seqScans(db, BIG);
            await stopService(s.w, how === 'SIGTERM' ? 'SIGTERM' : 'SIGKILL');
            // While tidewire is down: 500 rows the client holds and 500 it does not change.
            const k = restarts.length * 1000;
            const ids = [...Array.from({ length: 500 }, (_, i) => CUSTOMER + 97 * ((k + i) % Math.floor(rows / 97))), ...Array.from({ length: 500 }, (_, i) => 1 + ((k * 7 + i * 97 + 3) % rows))];
            await touchRows(db.url, BIG, ids.filter((id) => id >= 1 && id <= rows));
            s = await startService(config, port, heapMiB(rows), bigTimeout);
            const deadline = performance.now() + 120_000;
            while (!resumes.some((r) => r.at > s.forkedAt)) {
              if (performance.now() > deadline) throw new Error(`${m}: the client did not resume within 120 s of /ready`);
              await sleep(20);
            }
            const r = resumes.find((x) => x.at > s.forkedAt)!;
            const health = await getJson(`http://127.0.0.1:${port}/health`);
            const scans = (await seqScans(db, BIG)) - scansBefore;
            const st = await s.started;
            const memory = await s.w.call<Memory>('memory');
            s.w.watch.sample();
            const run: RestartRun = {
              mode: m, how, readySeconds: s.readySeconds, bootSeconds: s.bootSeconds, resumedSeconds: (r.at - s.forkedAt) / 1000, resumed: r.resumed, epochChanged: r.epochChanged,
              startedBy: health.body?.sources?.[0]?.startedBy ?? null, seqScansDuring: scans, peakRssBytes: s.w.watch.hwm, memory, topics: st.topics, marks: st.marks,
            };
            restarts.push(run);
            ctx.log(`state: ${m} after ${how}: ready in ${run.readySeconds.toFixed(1)} s, client resumed (${r.resumed}) in ${run.resumedSeconds!.toFixed(1)} s; ${scans} table scan(s); started by ${run.startedBy}`);
            if (st.topics !== rows) throw new Error(`${m} after ${how}: the service holds ${st.topics} topics, the table has ${rows} rows`);
            if (m === 'durable') {
              if (scans !== 0) throw new Error(`durable after ${how}: the table was read again (${scans} sequential scans)`);
              if (run.startedBy !== 'resumed') throw new Error(`durable after ${how}: /health says startedBy ${run.startedBy}, not resumed`);
              if (r.resumed === 'fresh' || r.epochChanged) throw new Error(`durable after ${how}: the client resumed ${r.resumed} (epoch changed: ${r.epochChanged})`);
            } else if (scans < 1) throw new Error(`in memory after ${how}: no sequential scan of the table counted, so the durable side's zero proves nothing`);
            await clientEqualsTable(client, db, BIG, where, `${m} after ${how}`);
          }
          const ev = await client.call<{ removals: number; regressions: number; blanks: number }>('events');
          if (ev.regressions > 0 || ev.blanks > 0 || (m === 'durable' && ev.removals > 0)) throw new Error(`${m}: the client saw ${ev.regressions} version regressions, ${ev.blanks} blanks, ${ev.removals} removals`);
        } finally {
          await client.stop();
          await stopService(s.w, 'SIGTERM');
        }
      }

      return report({
        quick, rows, midRows, pgVersion, bigTable, midTable, watched, restarts, midMemory, subscription: subscription!, ingest, ingestChanges, ingestReps,
        rate, cpuPerM, cpuRatio, rateRatio, load: { ...load, atRestart: loadAtRestart, end: loadAverage() }, writerRate,
      });
    } finally {
      await db.stop();
    }
  },
};

/**
 * Part 4: one SDK client subscribes to every topic of the running (durable) service while a writer
 * updates the table; returns the figures. Throws if the send queue passed its limit, a session was
 * dropped, or the client's final state differs from the table.
 */
async function loadSubscription(ctx: { log(l: string): void; quick: boolean }, db: BenchPostgres, s: Started, port: number, rows: number, writerRate: number): Promise<Record<string, unknown>> {
  const writer = await Worker.start('writer');
  const client = await Worker.start('sdk-client', [], { nodeArgs: ['--max-old-space-size=8192', '--expose-gc'] });
  try {
    const before = await s.w.call<{ rss: number; queuePeak: { bytes: number }; distribution: { disconnects: Record<string, number> } }>('stats');
    s.w.watch.sample();
    const rssBefore = s.w.watch.rss;
    const hwmBefore = s.w.watch.hwm;
    // The writer runs during the whole load, and a second after (stopped then; at most 5 minutes).
    const writerSeconds = 300;
    const writerEndsAt = wall() + writerSeconds * 1000;
    const writing = writer.call<{ sent: number; rate: number }>('run', { pgUrl: db.url, table: 'state_mid', rows, rate: writerRate, seconds: writerSeconds, set: 'v = v + 1, qty = (qty + 1) % 100' });
    let peakRss = 0;
    const poll = setInterval(() => {
      s.w.watch.sample();
      peakRss = Math.max(peakRss, s.w.watch.rss);
    }, 50);
    let sub: { startedAt: number; liveAt: number; topics: number; pages: number };
    const cpu = new CpuWindow({ server: s.w.child.pid!, client: client.child.pid! });
    let window: ReturnType<CpuWindow['end']>;
    try {
      sub = await client.call('subscribe', { url: `ws://127.0.0.1:${port}/ws`, selector: 'orders/**', timeoutMs: 300_000 });
    } finally {
      window = cpu.end();
      clearInterval(poll);
    }
    const loadSeconds = (sub.liveAt - sub.startedAt) / 1000;
    ctx.log(`state: ${num(rows)}-topic subscription live in ${loadSeconds.toFixed(1)} s (${num(sub.pages)} loading messages), server RSS peak ${mib(peakRss)}; cores used: server ${window.cores.server}, client ${window.cores.client}, others ${window.otherCores}`);
    await sleep(1000);
    await writer.call('stop');
    const wrote = await writing;
    const after = await s.w.call<{ queuePeak: { bytes: number; messages: number; socketBytes: number }; distribution: { disconnects: Record<string, number> } }>('stats');
    const dropped = Object.values(after.distribution.disconnects).reduce((a, b) => a + b, 0) - Object.values(before.distribution.disconnects).reduce((a, b) => a + b, 0);
    const ev = await client.call<{ disconnects: unknown[]; regressions: number; removals: number; values: number; lastProgress: { total: number } | null }>('events');
    if (sub.topics !== rows) throw new Error(`the subscription went live with ${sub.topics} topics, the table has ${rows} rows`);
    if (ev.disconnects.length > 0 || dropped > 0) throw new Error(`the client was disconnected during the load: ${JSON.stringify(ev.disconnects)}; server disconnects ${dropped}`);
    if (after.queuePeak.bytes > SEND_QUEUE_BYTES) throw new Error(`the send queue reached ${after.queuePeak.bytes} bytes, above sendQueueBytes ${SEND_QUEUE_BYTES}`);
    if (ev.regressions > 0 || ev.removals > 0) throw new Error(`the client saw ${ev.regressions} version regressions and ${ev.removals} removals`);
    if (!ctx.quick && sub.pages === 0) throw new Error('a 1,000,000-topic answer came without a loading message: not paged?');
    await clientEqualsTable(client, db, 'state_mid', 'true', 'after the load and the writes');
    const clientMem = await client.call<{ rss: number; heapUsed: number }>('rss');
    s.w.watch.sample();
    return {
      rows, loadSeconds, pages: sub.pages, writerRate: wrote.rate, writesThroughout: sub.liveAt <= writerEndsAt, writerChanges: wrote.sent, rssBefore, hwmBefore, peakRss: Math.max(peakRss, s.w.watch.rss), hwmAfter: s.w.watch.hwm,
      queuePeak: after.queuePeak, valuesEmitted: ev.values, clientHeap: clientMem.heapUsed, clientRss: clientMem.rss,
      serverCores: window.cores.server, clientCores: window.cores.client, machineBusy: window.machineBusy, otherCores: window.otherCores,
    };
  } finally {
    await client.stop();
    await writer.stop();
  }
}

function report(x: {
  quick: boolean;
  rows: number;
  midRows: number;
  pgVersion: string;
  bigTable: { seconds: number; bytes: number };
  midTable: { seconds: number; bytes: number };
  watched: number;
  restarts: RestartRun[];
  midMemory: Record<Mode, { readySeconds: number; memory: Memory; topics: number; peakRssBytes: number }>;
  subscription: Record<string, any>;
  ingest: Record<Mode, TidewireIngest[]>;
  ingestChanges: number;
  ingestReps: number;
  rate: (m: Mode) => number[];
  cpuPerM: (m: Mode) => number[];
  cpuRatio: number;
  rateRatio: number;
  load: Record<string, unknown>;
  writerRate: number;
}): SuiteResult {
  const { rows, midRows, restarts } = x;
  const run = (m: Mode, how: RestartRun['how']) => restarts.find((r) => r.mode === m && r.how === how)!;
  const secs = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)} s`);
  const dTerm = run('durable', 'SIGTERM');
  const dKill = run('durable', 'kill -9');
  const mTerm = run('memory', 'SIGTERM');
  const restartTable: Table = {
    title: `Restart with ${num(rows)} rows: process start → /ready, and → a connected SDK client's \`resumed\``,
    columns: ['', 'durable, after SIGTERM', 'durable, after kill -9', 'in memory (re-snapshot), after SIGTERM', 'in memory ÷ durable (SIGTERM)'],
    rows: [
      ['process start → /ready', secs(dTerm.readySeconds), secs(dKill.readySeconds), secs(mTerm.readySeconds), ratio(mTerm.readySeconds, dTerm.readySeconds)],
      ['process start → the client\'s `resumed`', secs(dTerm.resumedSeconds), secs(dKill.resumedSeconds), secs(mTerm.resumedSeconds), ratio(mTerm.resumedSeconds ?? NaN, dTerm.resumedSeconds ?? NaN)],
      ['of which: process fork → start() called (Node, tsx, imports)', secs(dTerm.bootSeconds), secs(dKill.bootSeconds), secs(mTerm.bootSeconds), ''],
      ['of which: start() → the store opened and topic state served from it', secs(dTerm.marks['state loaded'] ?? null), secs(dKill.marks['state loaded'] ?? null), '–', ''],
      ['resumed as', `${dTerm.resumed}${dTerm.epochChanged ? ', new epoch' : ', same epoch'}`, `${dKill.resumed}${dKill.epochChanged ? ', new epoch' : ', same epoch'}`, `${mTerm.resumed}${mTerm.epochChanged ? ', new epoch' : ', same epoch'}`, ''],
      ['sequential scans of the table during the restart', String(dTerm.seqScansDuring), String(dKill.seqScansDuring), String(mTerm.seqScansDuring), ''],
      ['/health `startedBy`', String(dTerm.startedBy), String(dKill.startedBy), String(mTerm.startedBy), ''],
      ['peak RSS of the restarted process', mib(dTerm.peakRssBytes), mib(dKill.peakRssBytes), mib(mTerm.peakRssBytes), ratio(mTerm.peakRssBytes, dTerm.peakRssBytes)],
      ['first start (nothing stored): process start → /ready', secs(run('durable', 'first start').readySeconds), '', secs(run('memory', 'first start').readySeconds), ratio(run('memory', 'first start').readySeconds, run('durable', 'first start').readySeconds, 2)],
    ],
    notes: [
      `The client (its own process, the SDK in client/) subscribed to \`items/7/**\` (${num(x.watched)} topics) before the restart; 1,000 rows (500 of them its own) were updated while tidewire was down, and after each restart it had to hold exactly the table's rows (count and sums over two columns).`,
      'Process start is the fork of the service process (bench/workers/service.ts: Node with tsx loading TypeScript, then a TidewireService as `tidewire start` builds it); `/ready` was polled every 50 ms.',
      'Sequential scans: pg_stat_user_tables.seq_scan of the table before the stop and after the client resumed. The in-memory side must read the table again (≥ 1), or the durable side\'s 0 would prove nothing.',
    ],
  };
  const mem = (m: Memory, n: number) => [mib(m.heapUsed), `${num(m.heapUsed / n)} B`, mib(m.rss), `${num(m.rss / n)} B`, m.rssAnon === undefined ? '–' : `${mib(m.rssAnon)} / ${mib(m.rssFile ?? 0)}`];
  const memRows: Array<Array<string>> = [];
  for (const m of MODES) memRows.push([`${num(midRows)} topics, ${MODE_LABEL[m]}, after the first start`, ...mem(x.midMemory[m].memory, midRows)]);
  for (const m of MODES) memRows.push([`${num(rows)} topics, ${MODE_LABEL[m]}, after the first start`, ...mem(run(m, 'first start').memory, rows)]);
  memRows.push([`${num(rows)} topics, durable, after the restart (served from the store)`, ...mem(dTerm.memory, rows)]);
  memRows.push([`${num(rows)} topics, in memory, after the restart (re-snapshot)`, ...mem(mTerm.memory, rows)]);
  const memTable: Table = {
    title: 'Heap and RSS per topic: the server after the load and two full GCs (`--expose-gc`), `process.memoryUsage()`',
    columns: ['', 'heap used', 'heap per topic', 'RSS', 'RSS per topic', 'RSS: own (anonymous) / store pages (file-backed)'],
    rows: memRows,
    notes: [`Rows of the order table (12 columns, ~330 bytes as JSON). RSS includes the durable side's memory-mapped store pages that are resident (lmdb maps its file; those pages are page cache the kernel drops under pressure); the last column splits it as /proc/self/status does (RssAnon; RssFile + RssShmem).`],
  };
  const d = x.ingest.durable;
  const mm = x.ingest.memory;
  const med = (xs: number[]) => median(xs);
  const ingestTable: Table = {
    title: `Steady-state ingest: ${num(x.ingestChanges)} pre-written row changes, durable store vs in memory (${x.ingestReps} alternating run(s) each, medians)`,
    columns: ['', 'durable store', 'in memory', 'durable ÷ memory (median of pairs)'],
    rows: [
      ['changes/s', num(med(x.rate('durable'))), num(med(x.rate('memory'))), ratio(x.rateRatio, 1, 3)],
      ['CPU s per million changes (tidewire process, streaming)', num(med(x.cpuPerM('durable')), 1), num(med(x.cpuPerM('memory')), 1), ratio(x.cpuRatio, 1, 3)],
      ['every run, changes/s', x.rate('durable').map((v) => num(v)).join(', '), x.rate('memory').map((v) => num(v)).join(', '), ''],
      ['every run, CPU s per million changes', x.cpuPerM('durable').map((v) => num(v, 1)).join(', '), x.cpuPerM('memory').map((v) => num(v, 1)).join(', '), ''],
      ['peak RSS', mib(med(d.map((r) => r.peakRssBytes))), mib(med(mm.map((r) => r.peakRssBytes))), ''],
      ['store transactions written (group commit)', num(med(d.map((r) => r.stored?.writes ?? 0))), '–', ''],
    ],
    notes: [
      'The ingest suite\'s workload (transactions of 1,000 changes: 600 inserts, 300 updates, 100 deletes) written to WAL before either reader starts; each run reads it from its own slot with tidewire\'s streaming pieces (bench/workers/tidewire-ingest.ts). Durable: LmdbStateStore behind the StateJournal as TidewireService wires it, each LSN acknowledged only once durable; a run ends when the last change is durable, and the store must then hold every topic.',
    ],
  };
  const sub = x.subscription;
  const subTable: Table = {
    title: `Initial load of a ${num(sub.rows)}-topic subscription into one SDK client, writes continuing (${num(sub.writerRate)} changes/s)`,
    columns: ['', 'value'],
    rows: [
      [`subscribe → \`subscribed\` (live, every value held)${sub.loads.length > 1 ? `, median of ${sub.loads.length}` : ''}`, `${sub.loadSeconds.toFixed(1)} s${sub.loads.length > 1 ? ` (${sub.loads.map((l: { loadSeconds: number }) => l.loadSeconds.toFixed(1)).join(', ')})` : ''}`],
      ['cores used during the load: server / client / other jobs on the machine', `${num(sub.serverCores, 2)} / ${num(sub.clientCores, 2)} / ${num(sub.otherCores, 2)} (machine ${num(sub.machineBusy * 100)}% busy)`],
      ['`loading` messages (pages) before it', num(sub.pages)],
      ['server RSS before the first subscribe → peak during the loads', `${mib(sub.rssBefore)} → ${mib(sub.peakRss)}`],
      ['server send queue peak (sampled every 5 ms) / its limit (sendQueueBytes)', `${num(sub.queuePeak.bytes)} B / ${num(SEND_QUEUE_BYTES)} B`],
      ['server socket backlog peak', `${num(sub.queuePeak.socketBytes)} B`],
      ['client heap / RSS holding every topic', `${mib(sub.clientHeap)} / ${mib(sub.clientRss)}`],
      ['writer', `${num(sub.writerChanges)} updates over the table, ${sub.writesThroughout ? 'still writing when the subscription went live' : '**stopped before the subscription went live**'}`],
    ],
    notes: [
      'The durable service of the heap table above; each load is a new client (its own process) subscribing to `orders/**`. Checked on every load: it went live with every topic, was never disconnected, saw no removal and no version that did not increase, the send queue stayed under its limit, and once the writer stopped it held exactly the table (count and sums over two columns).',
    ],
  };
  const targets: Target[] = [
    { description: `restart with ${num(rows)} rows, durable: process start → client resumed ≤ 10 s`, met: Math.max(dTerm.resumedSeconds ?? Infinity, dKill.resumedSeconds ?? Infinity) <= 10, measured: `${secs(dTerm.resumedSeconds)} after SIGTERM, ${secs(dKill.resumedSeconds)} after kill -9 (re-snapshot: ${secs(mTerm.resumedSeconds)})` },
    { description: `restart with ${num(rows)} rows, durable: process start → /ready ≤ 10 s`, met: Math.max(dTerm.readySeconds, dKill.readySeconds) <= 10, measured: `${secs(dTerm.readySeconds)} after SIGTERM, ${secs(dKill.readySeconds)} after kill -9 (re-snapshot: ${secs(mTerm.readySeconds)})` },
    { description: 'steady-state ingest with the store on ≤ 15% slower (CPU s per million changes)', met: x.cpuRatio <= 1.15, measured: `${ratio(x.cpuRatio, 1, 2)} the CPU per change, ${ratio(x.rateRatio, 1, 2)} the changes/s` },
    ...(rows >= 10_000_000 ? [{ description: `${num(rows)} rows in ≤ 2 GiB RSS (durable, after the restart)`, met: dTerm.memory.rss <= 2 * 2 ** 30, measured: `${mib(dTerm.memory.rss)}${dTerm.memory.rssAnon === undefined ? '' : `: own (anonymous) ${mib(dTerm.memory.rssAnon)}, store pages (file-backed) ${mib(dTerm.memory.rssFile ?? 0)}`}` }] : []),
    { description: `initial load of a ${num(sub.rows)}-topic subscription ≤ 10 s`, met: sub.loadSeconds <= 10, measured: `${sub.loadSeconds.toFixed(1)} s, send queue peak ${num(sub.queuePeak.bytes)} B` },
  ];
  const caveats: string[] = [];
  if (!x.quick && rows < 10_000_000) caveats.push(`The restart table has ${num(rows)} rows (\`--rows ${rows}\`), not 10,000,000: see the report for why.`);
  caveats.push('Two noisy shared cores: other jobs ran during the suite (load averages in data.load); read the ratios more than the absolute figures.');
  return {
    summary:
      `Postgres ${x.pgVersion}. A ${num(rows)}-row order table (${mib(x.bigTable.bytes)} with its index, written in ${x.bigTable.seconds.toFixed(0)} s) and a ${num(midRows)}-row one (${mib(x.midTable.bytes)}). ` +
      'Each side runs a TidewireService in its own process (bench/workers/service.ts), with `state.dir` (the default) or `state: { memory: true }`; the SDK client and the writer run in their own processes. ' +
      'Restart: time from the fork of the new process to /ready and to the resume of a client subscribed before the restart, after SIGTERM and after kill -9. Ingest: the same pre-written WAL both ways, alternating. Memory: after two full GCs. Subscription: 1M topics into one client while a writer updates the table.',
    command: `npm run bench -- --only state${x.quick ? ' --quick' : ''}${x.rows !== (x.quick ? 20_000 : 10_000_000) ? ` --rows ${x.rows}` : ''}`,
    tables: [restartTable, ingestTable, memTable, subTable],
    targets,
    data: { postgres: x.pgVersion, rows, midRows, bigTable: x.bigTable, midTable: x.midTable, restarts, midMemory: x.midMemory, subscription: sub, ingest: x.ingest, ingestChanges: x.ingestChanges, cpuRatio: x.cpuRatio, rateRatio: x.rateRatio, load: x.load },
    caveats,
  };
}

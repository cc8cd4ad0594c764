/**
 * scaleout — tidewire scaled out (issue #15): an ingest node reads Postgres and publishes every
 * batch to a one-partition Kafka topic; edges replicate it and serve the clients.
 *
 * 1. Commit-to-client latency through ingest → Kafka → edge against the all-in-one node (role
 *    all), in the same run, alternating: two tables, one per path, so the side not measured gets
 *    no change; the same writer, the same number of clients on the serving node. The Kafka hop's
 *    cost is the difference, paired per repetition.
 * 2. An edge's cold start: the ingest node read a table of N rows (N topics) and published them;
 *    a new edge process is timed from its fork to GET /ready answering 200 (bench/lib/edge-cold-start.ts).
 * 3. Fan-out CPU per delivery on each edge with 1, 2 and 3 edges (bench/lib/edge-fanout.ts).
 *
 * One real Apache Kafka broker (test/support/kafka-broker.ts), Postgres, the nodes, the writer and
 * the load generators all share the 2 cores.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { startKafka } from '../../test/support/kafka-broker.ts';
import { type ProfileSummary, summarizeProfile } from '../lib/cpuprofile.ts';
import { type PauseRun, handoffWithBrokerPaused } from '../lib/broker-pause.ts';
import { type ColdStartResult, measureColdStart } from '../lib/edge-cold-start.ts';
import { type FanoutStep, fanoutStep } from '../lib/edge-fanout.ts';
import { mib, ms, num, ratio } from '../lib/format.ts';
import { postmasterPid, serverVersion, startBenchPostgres } from '../lib/postgres.ts';
import { CpuWindow } from '../lib/proc.ts';
import { type HandoffTopic, type Node, allConfig, brokerPids, edgeConfig, ingestConfig, startNode } from '../lib/scaleout-nodes.ts';
import { type StepResult, drain, loadGeneratorLimit, measureStep } from '../lib/step.ts';
import { type LatencySummary, median } from '../lib/stats.ts';
import { ROW_UPDATE_SET, createRowsTable } from '../lib/tables.ts';
import { Worker } from '../lib/worker.ts';
import type { Suite, SuiteResult, Table, Target } from '../suite.ts';

const ROWS = 1000;
const PATH = 'so/{id}';
const SELECTOR = 'so/**';
type Side = 'all' | 'edge';
const SIDE_LABEL: Record<Side, string> = { all: 'all-in-one (role all)', edge: 'ingest → Kafka → edge' };

interface Sizes {
  rates: number[];
  clients: number;
  reps: number;
  warm: number;
  /** Seconds of writes on each path once, before the first pair. */
  prewarm: number;
  seconds: number;
  coldTopics: number;
  coldReps: number;
  coldHeapMiB: number;
  fanoutEdges: number[];
  fanoutClients: number;
  fanoutRate: number;
}

const FULL: Sizes = { rates: [1000, 5000], clients: 100, reps: 3, warm: 2, prewarm: 6, seconds: 8, coldTopics: 1_000_000, coldReps: 3, coldHeapMiB: 6144, fanoutEdges: [1, 2, 3, 3, 2, 1], fanoutClients: 50, fanoutRate: 1000 };
const QUICK: Sizes = { rates: [1000], clients: 20, reps: 1, warm: 0.5, prewarm: 1, seconds: 2, coldTopics: 20_000, coldReps: 1, coldHeapMiB: 1024, fanoutEdges: [1, 2], fanoutClients: 10, fanoutRate: 500 };

interface HopProfile {
  rate: number;
  p50: number;
  p99: number;
  ingest: ProfileSummary;
  edge: ProfileSummary;
}

interface LatencyRun {
  side: Side;
  rate: number;
  rep: number;
  step: StepResult;
  /** Edge side: commit → the ingest node's hand-off (warm-up included), its cores, the broker's. */
  ingestHandoffMs?: LatencySummary;
  ingestCores?: number;
  brokerCores?: number;
}

export const suite: Suite = {
  name: 'scaleout',
  title: 'Scale-out: ingest → Kafka → edge vs all-in-one latency, edge cold start, fan-out CPU per edge',
  async run(ctx): Promise<SuiteResult> {
    const z = ctx.quick ? QUICK : FULL;
    const pg = await startBenchPostgres();
    const nodes: Node[] = [];
    const workers: Worker[] = [];
    let broker: Awaited<ReturnType<typeof startKafka>> | null = null;
    try {
      const pgVersion = await serverVersion(pg);
      broker = await startKafka({ log: (m) => ctx.log(`scaleout: ${m}`) });
      const handoff: HandoffTopic = { brokers: broker.brokers, topic: 'tidewire-so-latency' };
      const tables: Record<Side, string> = { all: 'so_all', edge: 'so_edge' };
      for (const t of Object.values(tables)) await createRowsTable(pg, t, ROWS);
      const postgresPid = await postmasterPid(pg);
      const [all, ingest] = await Promise.all([
        startNode(allConfig({ pgUrl: pg.url, table: tables.all, slot: 'bench_so_all', path: PATH })),
        startNode(ingestConfig({ pgUrl: pg.url, table: tables.edge, slot: 'bench_so_ingest', path: PATH }, handoff)),
      ]);
      const edge = await startNode(edgeConfig(handoff));
      nodes.push(all, ingest, edge);
      const writer = await Worker.start('writer');
      workers.push(writer);
      const serving: Record<Side, Node> = { all, edge };
      const clients = {} as Record<Side, Worker>;
      for (const side of ['all', 'edge'] as const) {
        clients[side] = await Worker.start('ws-clients', [], { nodeArgs: ['--max-old-space-size=2048'] });
        workers.push(clients[side]);
        const c = await clients[side].call<{ seconds: number }>('connect', { url: `ws://127.0.0.1:${serving[side].port}/ws`, n: z.clients, protocol: 'tidewire', selector: SELECTOR, probes: 100 });
        ctx.log(`scaleout: ${z.clients} clients on the ${SIDE_LABEL[side]} node in ${c.seconds.toFixed(1)} s`);
      }

      // The first seconds of writes through a fresh ingest node queued behind its appends in every run so far (a first
      // edge step at p50 0.5 s): both paths are warmed once, unmeasured, so the first pair measures the steady state.
      for (const side of ['all', 'edge'] as const) {
        await writer.call('run', { pgUrl: pg.url, table: tables[side], rows: ROWS, rate: z.rates[0], set: ROW_UPDATE_SET, seconds: z.prewarm });
        await drain(clients[side]);
      }
      const runs: LatencyRun[] = [];
      for (const rate of z.rates) {
        for (let rep = 0; rep < z.reps; rep++) {
          // ABBA: the side measured first alternates, so drift in the machine's load falls on both.
          for (const side of rep % 2 === 0 ? (['all', 'edge'] as const) : (['edge', 'all'] as const)) {
            const run = await latencyStep(side, rate, rep);
            runs.push(run);
            const l = run.step.window.latencyMs;
            ctx.log(`scaleout: ${SIDE_LABEL[side]}, ${num(run.step.writer.rate)} changes/s: p50 ${ms(l.p50)}, p99 ${ms(l.p99)}; delivered ${(run.step.delivered * 100).toFixed(1)}%`);
          }
        }
      }

      async function latencyStep(side: Side, rate: number, rep: number): Promise<LatencyRun> {
        const extra = side === 'edge' ? new CpuWindow({ ingest: ingest.w.child.pid!, broker: brokerPids }) : null;
        if (extra) await ingest.w.call('handoff');
        const step = await measureStep({ writer, clients: clients[side], server: serving[side].w, pgUrl: pg.url, table: tables[side], rows: ROWS, set: ROW_UPDATE_SET, rate, warmSeconds: z.warm, seconds: z.seconds, postgresPid, handoffLatency: true });
        if (step.window.deliveries === 0 || step.window.latencyMs.count === 0) throw new Error(`scaleout: no delivery reached the clients of the ${SIDE_LABEL[side]} node at ${rate} changes/s`);
        if (step.delivered < 0.97) await drain(clients[side]);
        if (!extra) return { side, rate, rep, step };
        const used = extra.end();
        const ingestHandoffMs = await ingest.w.call<LatencySummary>('handoff');
        return { side, rate, rep, step, ingestHandoffMs, ingestCores: used.cores.ingest, brokerCores: used.cores.broker };
      }

      // Where the edge path's time goes: one more edge step at the highest rate, both nodes profiled (not measured).
      let hopProfile: HopProfile | null = null;
      if (!ctx.quick) {
        const dir = join(ctx.scratchDir, 'profiles');
        mkdirSync(dir, { recursive: true });
        const profiled = { ingest: ingest.w, edge: edge.w };
        for (const w of Object.values(profiled)) await w.call('profileStart', { intervalUs: 500 });
        const step = await latencyStep('edge', z.rates[z.rates.length - 1], -1);
        const files = { ingest: join(dir, 'ingest.cpuprofile'), edge: join(dir, 'edge.cpuprofile') };
        for (const [k, w] of Object.entries(profiled)) await w.call('profileStop', { file: files[k as keyof typeof files] });
        hopProfile = { rate: step.rate, p50: step.step.window.latencyMs.p50, p99: step.step.window.latencyMs.p99, ingest: summarizeProfile(files.ingest, 12), edge: summarizeProfile(files.edge, 12) };
        ctx.log(`scaleout: profiled edge step: p50 ${ms(hopProfile.p50)}, p99 ${ms(hopProfile.p99)}`);
      }

      // The ingest node's own hand-off while the broker is stopped now and then, the all-in-one node as the control.
      const pauses: Array<PauseRun & { node: 'all' | 'ingest' }> = [];
      if (!ctx.quick) {
        for (const [node, paused] of [['all', true], ['ingest', false], ['ingest', true]] as const) {
          const table = node === 'all' ? tables.all : tables.edge;
          const r = await handoffWithBrokerPaused({ node: (node === 'all' ? all : ingest).w, writer, paused, pauseMs: 300, seconds: 4, write: { pgUrl: pg.url, table, rows: ROWS, set: ROW_UPDATE_SET, rate: 1000 } });
          pauses.push({ ...r, node });
          ctx.log(`scaleout: ${node} node, broker ${paused ? 'stopped 2 × 300 ms' : 'running'}: commit → hand-off p50 ${ms(r.handoffMs.p50)}, p99 ${ms(r.handoffMs.p99)}, max ${ms(r.handoffMs.max)}`);
        }
      }

      // The latency side's load generators leave: fan-out brings its own, one per edge.
      for (const side of ['all', 'edge'] as const) await clients[side].stop();
      await edge.w.stop();
      await all.w.stop();
      const fanout: FanoutStep[] = [];
      for (const k of z.fanoutEdges) {
        const s = await fanoutStep(k, {
          handoff, writer, ingest, rate: z.fanoutRate, clientsPerEdge: z.fanoutClients, selector: SELECTOR, warmSeconds: z.warm, seconds: z.seconds,
          write: { pgUrl: pg.url, table: tables.edge, rows: ROWS, set: ROW_UPDATE_SET },
        });
        fanout.push(s);
        ctx.log(`scaleout: fan-out, ${k} edge(s) × ${z.fanoutClients} clients: CPU s per million deliveries per edge ${s.perEdge.map((e) => num(e.cpuSecondsPerMillion, 2)).join(', ')}; machine ${Math.round(s.machineBusy * 100)}% busy`);
      }
      await ingest.w.stop();
      await writer.stop();

      const profileDir = ctx.quick ? null : join(ctx.scratchDir, 'profiles');
      if (profileDir) mkdirSync(profileDir, { recursive: true });
      ctx.log(`scaleout: cold start of an edge for ${num(z.coldTopics)} topics`);
      const cold = await measureColdStart({ pg, brokers: broker.brokers, topics: z.coldTopics, reps: z.coldReps, heapMiB: z.coldHeapMiB, profileDir, log: ctx.log });
      return report(ctx.quick, ctx.root, z, { runs, hopProfile, pauses }, fanout, cold, pgVersion);
    } finally {
      for (const w of workers) await w.stop();
      for (const n of nodes) await n.w.stop();
      await broker?.stop();
      await pg.stop();
    }
  },
};

interface LatencyPart {
  runs: LatencyRun[];
  hopProfile: HopProfile | null;
  pauses: Array<PauseRun & { node: 'all' | 'ingest' }>;
}

function report(quick: boolean, root: string, z: Sizes, latency: LatencyPart, fanout: FanoutStep[], cold: ColdStartResult, pgVersion: string): SuiteResult {
  const { runs, hopProfile, pauses } = latency;
  const of = (side: Side, rate: number) => runs.filter((r) => r.side === side && r.rate === rate).sort((a, b) => a.rep - b.rep);
  const m = (xs: LatencyRun[], f: (r: LatencyRun) => number) => median(xs.map(f));
  /** Edge minus all-in-one, per repetition (the two steps ran back to back). */
  const added = (rate: number, q: 'p50' | 'p99') => {
    const a = of('all', rate);
    return of('edge', rate).map((e, i) => e.step.window.latencyMs[q] - a[i].step.window.latencyMs[q]);
  };
  const latencyTable: Table = {
    title: `Commit-to-client latency, all-in-one vs ingest → Kafka → edge (${num(z.clients)} clients on the serving node, median of ${z.reps} run${z.reps > 1 ? 's' : ''})`,
    columns: ['changes/s', 'path', 'p50', 'p99', 'p99.9', 'commit → hand-off on the serving node p50 / p99', 'delivered', 'cores: serving node', 'ingest node', 'Kafka broker', 'clients', 'Postgres', 'other', 'p99 of each run'],
    rows: z.rates.flatMap((rate) =>
      (['all', 'edge'] as const).map((side) => {
        const xs = of(side, rate);
        return [
          num(rate),
          SIDE_LABEL[side],
          ms(m(xs, (r) => r.step.window.latencyMs.p50)),
          ms(m(xs, (r) => r.step.window.latencyMs.p99)),
          ms(m(xs, (r) => r.step.window.latencyMs.p999)),
          `${ms(m(xs, (r) => r.step.handoffLatencyMs!.p50))} / ${ms(m(xs, (r) => r.step.handoffLatencyMs!.p99))}`,
          `${(m(xs, (r) => r.step.delivered) * 100).toFixed(1)}%`,
          m(xs, (r) => r.step.cpu.cores.server).toFixed(2),
          side === 'edge' ? m(xs, (r) => r.ingestCores!).toFixed(2) : '–',
          side === 'edge' ? m(xs, (r) => r.brokerCores!).toFixed(2) : '–',
          m(xs, (r) => r.step.cpu.cores.clients).toFixed(2),
          m(xs, (r) => r.step.cpu.cores.postgres ?? 0).toFixed(2),
          m(xs, (r) => r.step.cpu.otherCores).toFixed(2),
          xs.map((r) => ms(r.step.window.latencyMs.p99)).join(', '),
        ];
      }),
    ),
    notes: [
      'Latency = receive time − the writer\'s wall clock written into the row (sent_us), on one clock, as in the latency suite. Each path has its own table, slot and writer steps, so the path not measured gets no change.',
      '"commit → hand-off on the serving node": on the all-in-one node, the change applied and handed to fan-out; on the edge, the change replicated from the log and handed to the edge\'s fan-out (Kafka hop included). The ingest node\'s own figure is in the next table.',
      '"cores" are CPU seconds per second over the window; "ingest node" and "Kafka broker" over the warm-up and the window. "other": everything else on the machine, the ingest node and the broker included on the edge path.',
    ],
  };
  const hopTable: Table = {
    title: 'What the Kafka hop adds (edge − all-in-one, paired per repetition; median)',
    columns: ['changes/s', 'transactions/s', 'added p50', 'added p99', 'added p50 of each pair', 'added p99 of each pair', 'commit → ingest node\'s hand-off p50 / p99', 'commit → edge\'s hand-off p50 / p99', 'hop inside (edge − ingest hand-off) p50'],
    rows: z.rates.map((rate) => {
      const e = of('edge', rate);
      return [
        num(rate),
        num(m(e, (r) => r.step.writer.statements / r.step.writer.seconds)),
        ms(median(added(rate, 'p50'))),
        ms(median(added(rate, 'p99'))),
        added(rate, 'p50').map(ms).join(', '),
        added(rate, 'p99').map(ms).join(', '),
        `${ms(m(e, (r) => r.ingestHandoffMs!.p50))} / ${ms(m(e, (r) => r.ingestHandoffMs!.p99))}`,
        `${ms(m(e, (r) => r.step.handoffLatencyMs!.p50))} / ${ms(m(e, (r) => r.step.handoffLatencyMs!.p99))}`,
        ms(m(e, (r) => r.step.handoffLatencyMs!.p50 - r.ingestHandoffMs!.p50)),
      ];
    }),
    notes: [
      'The hop: the ingest node encodes the batch and appends it (idempotent producer, acks from every in-sync replica, one append in flight; the Postgres source publishes a transaction only once the previous one\'s append was acknowledged, see the broker-pause table), the broker writes it, the edge\'s consumer fetches it (a fetch waits up to 100 ms when idle and returns as soon as a record arrives), decodes it and applies it to its replica store.',
    ],
  };
  // cpuprofile.ts shortens the folders it knows; core/ comes out as an absolute path of this checkout.
  const local = (where: string) => where.replace(root.endsWith('/') ? root : `${root}/`, '');
  const profileRows = (p: ProfileSummary) => p.functions.slice(0, 10).map((f) => [f.name, local(f.where), num(f.selfMs), `${f.percent.toFixed(1)}%`]);
  const byFile = (p: ProfileSummary) => `By file: ${p.files.slice(0, 8).map((f) => `${local(f.file)} ${f.percent.toFixed(0)}%`).join(', ')}.`;
  const hopProfileTables: Table[] = hopProfile
    ? (['ingest', 'edge'] as const).map((k) => ({
        title: `Where the ${k === 'ingest' ? 'ingest node' : 'edge'} spends its CPU on the edge path (one more step at ${num(hopProfile.rate)} changes/s, profiled, not measured: p50 ${ms(hopProfile.p50)}, p99 ${ms(hopProfile.p99)}; ${num(hopProfile[k].totalMs / 1000, 1)} s of samples, self time)`,
        columns: ['function', 'where', 'self ms', '%'],
        rows: profileRows(hopProfile[k]),
        notes: [byFile(hopProfile[k])],
      }))
    : [];
  if (pauses.length > 0) {
    hopProfileTables.unshift({
      title: 'Does a node\'s own hand-off wait for Kafka? The broker\'s JVM stopped (SIGSTOP) twice for 300 ms while the writer commits 1,000 changes/s for 4 s',
      columns: ['node', 'broker', 'transactions/s', 'commit → the node\'s own hand-off p50', 'p99', 'max'],
      rows: pauses.map((p) => [p.node === 'all' ? SIDE_LABEL.all : 'ingest (role ingest)', p.paused ? 'stopped 2 × 300 ms' : 'running', num(p.transactionsPerSecond), ms(p.handoffMs.p50), ms(p.handoffMs.p99), ms(p.handoffMs.max)]),
      notes: [
        'The node\'s own hand-off is what its own clients get (KafkaHandoff hands each batch to local listeners at once). An ingest node whose maximum follows the pause is not reading its source while an append waits: the Postgres source applies the next transaction only once the previous one\'s publish resolved, and KafkaHandoff.publish resolves when the log acknowledged the append, so a source transaction costs one Kafka round trip before the next.',
      ],
    });
  }
  const readies = cold.runs.map((r) => r.readySeconds);
  const coldTable: Table = {
    title: `Edge cold start: ${num(cold.topics)} topics in the hand-off log (${num(cold.logRecords)} records), fork → /ready`,
    columns: ['run', 'fork → /ready', 'fork → first line (Node, tsx, imports)', 'fork → listening (503)', 'catching up (listening → 200)', 'topics/s while catching up', 'edge CPU s', 'broker CPU s', 'peak RSS', 'topics held (tidewire_topics)', 'records behind (/health)'],
    rows: cold.runs.map((r, i) => [
      `${i + 1}`,
      `${r.readySeconds.toFixed(2)} s`,
      `${r.bootSeconds.toFixed(2)} s`,
      `${r.listeningSeconds.toFixed(2)} s`,
      `${(r.readySeconds - r.listeningSeconds).toFixed(2)} s`,
      num(r.topicsHeld / (r.readySeconds - r.listeningSeconds)),
      r.cpuSeconds.toFixed(1),
      r.brokerCpuSeconds.toFixed(1),
      mib(r.peakRssBytes),
      num(r.topicsHeld),
      num(r.behind),
    ]),
    notes: [
      `The ingest node read the ${num(cold.topics)}-row table (12 columns, about 330 bytes of JSON per row) in ${cold.ingestSeconds.toFixed(1)} s and published it; each edge then started from offset 0 of a log nobody wrote meanwhile.`,
      'Each run is checked: ready only with tidewire_topics = the topics the ingest node holds, /health\'s handoff offset = the log\'s end, and the first, middle and last topic equal (version and value) to the ingest node\'s.',
      '"edge CPU s" against "fork → /ready" tells whether the edge waited (on fetches, the broker) or worked.',
    ],
  };
  const tables: Table[] = [latencyTable, hopTable, ...hopProfileTables, coldTable];
  if (cold.profile) {
    tables.push({
      title: `Where the edge's cold start spends its CPU (one more start, profiled, not measured: ready in ${cold.profile.readySeconds.toFixed(1)} s, ${num(cold.profile.totalMs / 1000, 1)} s of samples, self time)`,
      columns: ['function', 'where', 'self ms', '%'],
      rows: profileRows(cold.profile),
      notes: [byFile(cold.profile)],
    });
  }
  const edgesSeen = [...new Set(fanout.map((s) => s.edges))].sort((a, b) => a - b);
  const perMillion = (k: number) => median(fanout.filter((s) => s.edges === k).flatMap((s) => s.perEdge.map((e) => e.cpuSecondsPerMillion)));
  tables.push({
    title: `Fan-out CPU per edge as edges are added (${num(z.fanoutClients)} clients per edge, ${num(z.fanoutRate)} changes/s, every client subscribed to every row)`,
    columns: ['edges', 'CPU s per million deliveries per edge (median)', 'vs 1 edge', 'each edge, each run', 'deliveries/s per edge', 'deliveries per frame', 'delivered', 'p99 per edge', 'cores: ingest', 'broker', 'load generators', 'machine busy'],
    rows: edgesSeen.map((k) => {
      const steps = fanout.filter((s) => s.edges === k);
      const shares = steps.flatMap((s) => s.perEdge);
      return [
        num(k),
        num(perMillion(k), 2),
        ratio(perMillion(k), perMillion(1), 2),
        steps.map((s) => s.perEdge.map((e) => num(e.cpuSecondsPerMillion, 2)).join(' / ')).join('; '),
        num(median(shares.map((e, i) => e.deliveries / steps[Math.floor(i / k)].writer.seconds))),
        num(median(shares.map((e) => e.deliveriesPerFrame)), 1),
        `${(median(shares.map((e) => e.delivered)) * 100).toFixed(1)}%`,
        ms(median(shares.map((e) => e.latencyP99Ms))),
        median(steps.map((s) => s.cores.ingest)).toFixed(2),
        median(steps.map((s) => s.cores.broker)).toFixed(2),
        median(steps.map((s) => s.perEdge.reduce((a, e) => a + e.clientCores, 0))).toFixed(2),
        `${Math.round(median(steps.map((s) => s.machineBusy)) * 100)}%`,
      ];
    }),
    notes: [
      'Each step starts k fresh edges (each replays the log, then serves), one load-generator process per edge, then a window; the edge\'s CPU (utime + stime of its process) ÷ the deliveries its clients counted. The edge\'s CPU includes replicating the log, which does not depend on clients.',
      `Edge counts run in the order ${z.fanoutEdges.join(', ')}.`,
    ],
  });

  const targets: Target[] = [];
  for (const rate of z.rates) {
    const p50 = median(added(rate, 'p50'));
    const p99 = median(added(rate, 'p99'));
    targets.push({ description: `the Kafka hop adds ≤ 5 ms at p50 at ${num(rate)} changes/s`, met: p50 <= 5, measured: `+${ms(p50)} (median of ${z.reps} pair${z.reps > 1 ? 's' : ''})` });
    targets.push({ description: `the Kafka hop adds ≤ 15 ms at p99 at ${num(rate)} changes/s`, met: p99 <= 15, measured: `+${ms(p99)} (median of ${z.reps} pair${z.reps > 1 ? 's' : ''})` });
  }
  targets.push({ description: `an edge's cold start (fork → /ready) for ${num(cold.topics)} topics ≤ 15 s`, met: median(readies) <= 15, measured: `${median(readies).toFixed(2)} s (median of ${readies.length}: ${readies.map((x) => x.toFixed(1)).join(', ')} s); the edge's own CPU ${median(cold.runs.map((r) => r.cpuSeconds)).toFixed(1)} s` });
  const top = edgesSeen[edgesSeen.length - 1];
  if (top > 1) {
    const r = perMillion(top) / perMillion(1);
    targets.push({ description: `fan-out CPU per million deliveries per edge stays flat: ${top} edges within 1.2× of 1 edge`, met: r <= 1.2, measured: `${num(perMillion(top), 2)} vs ${num(perMillion(1), 2)} CPU s (${r.toFixed(2)}×)` });
  }

  const caveats: string[] = [];
  for (const side of ['all', 'edge'] as const) {
    for (const rate of z.rates) {
      const why = of(side, rate).map((r) => loadGeneratorLimit(r.step)).find(Boolean);
      if (why) caveats.push(`${SIDE_LABEL[side]} at ${num(rate)} changes/s: ${why}, so part of that latency is the load generator's or the machine's.`);
    }
  }
  const spilled = runs.filter((r) => r.step.delivered > 1.02);
  if (spilled.length > 0) caveats.push(`${spilled.length} of ${runs.length} latency steps counted more than 100% delivered (up to ${(Math.max(...spilled.map((r) => r.step.delivered)) * 100).toFixed(0)}%): the warm-up's changes were still arriving when the window opened, so that step measured a backlog draining, not the steady state.`);
  for (const s of fanout) if (s.machineBusy >= 0.95) caveats.push(`fan-out with ${s.edges} edge(s): the machine was ${Math.round(s.machineBusy * 100)}% busy; with less CPU free, each edge's flushes carry more changes (deliveries per frame), which lowers CPU per delivery.`);
  if (quick) caveats.push(`--quick: ${num(cold.topics)} topics for the cold start (the target is for 1,000,000), one repetition, short windows.`);

  return {
    summary:
      `One Apache Kafka broker (test/support/kafka-broker.ts, one partition hand-off topics), Postgres ${pgVersion}, and tidewire nodes as users run them (TidewireService in its own process each): ` +
      `an all-in-one node (role all) and an ingest node (role ingest) each read their own ${ROWS}-row order-like table (about 330 bytes of JSON per row) by logical replication; an edge (role edge) replicates the ingest node's hand-off topic. ` +
      `A writer process commits UPDATEs at a steady rate to one table or the other, alternating, ${z.seconds} s per step after ${z.warm} s of warm-up; ${num(z.clients)} WebSocket clients (their own process) on the all-in-one node and ${num(z.clients)} on the edge, all subscribed to every row. ` +
      `The cold start forks a new edge against a log holding ${num(cold.topics)} topics (published by another ingest node from a ${num(cold.topics)}-row table) and times it to GET /ready = 200. ` +
      `Fan-out runs 1 to ${Math.max(...z.fanoutEdges)} edges with ${num(z.fanoutClients)} clients each at ${num(z.fanoutRate)} changes/s.`,
    command: `npm run bench -- --only scaleout${quick ? ' --quick' : ''}`,
    tables,
    targets,
    caveats,
    data: { postgres: pgVersion, sizes: z, latency: runs, fanout, cold, hopProfile, brokerPaused: pauses },
  };
}

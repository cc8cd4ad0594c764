/**
 * scaling — how tidewire's costs grow:
 *  1. topics: changes/s and memory per topic as topic state grows (fresh process per size);
 *  2. clients: peak deliveries/s and memory per connection as connections grow;
 *  3. latency as the change rate grows (apply-to-client, from the client sweep).
 * Sources are in-process (no Postgres) so each curve shows one component: decoding is in
 * `ingest`, the whole path in `latency`.
 */
import { mib, ms, num } from '../lib/format.ts';
import { type StepResult, loadGeneratorLimit, measureStep, saturation } from '../lib/step.ts';
import { Worker } from '../lib/worker.ts';
import type { Suite, SuiteResult } from '../suite.ts';

interface TopicRun {
  topics: number;
  updates: number;
  insertsPerSecond: number;
  updatesPerSecond: number;
  heapPerTopic: number;
  rssPerTopic: number;
  rss: number;
}

interface ClientRun {
  clients: number;
  rssBefore: number;
  rssConnected: number;
  perConnection: number;
  steps: StepResult[];
  saturatedBy: string | null;
}

const TOPICS_FOR_CLIENTS = 100;

export const suite: Suite = {
  name: 'scaling',
  title: 'Scaling: topics, connections and change rate',
  async run(ctx): Promise<SuiteResult> {
    const topicSizes = ctx.quick ? [1000, 10_000] : [1000, 100_000, 1_000_000];
    const updates = ctx.quick ? 30_000 : 300_000;
    const clientCounts = ctx.quick ? [100, 500] : [100, 1000, 10_000];
    const targets = ctx.quick ? [100_000, 300_000] : [250_000, 500_000, 1_000_000, 2_000_000, 4_000_000];
    const seconds = ctx.quick ? 1.5 : 4;

    const topicRuns: TopicRun[] = [];
    for (const n of topicSizes) {
      const w = await Worker.start('store-scaling', [], { nodeArgs: ['--expose-gc', `--max-old-space-size=${n >= 1_000_000 ? 12288 : 4096}`] });
      try {
        const r = await w.call<TopicRun>('run', { topics: n, updates });
        topicRuns.push(r);
        ctx.log(`scaling: ${num(n)} topics: ${num(r.insertsPerSecond)} inserts/s, ${num(r.updatesPerSecond)} updates/s, ${num(r.heapPerTopic)} B heap per topic`);
      } finally {
        await w.stop();
      }
    }

    const clientRuns: ClientRun[] = [];
    for (const n of clientCounts) {
      const server = await Worker.start('dist-server', [], { nodeArgs: ['--expose-gc', '--max-old-space-size=8192'] });
      const clients = await Worker.start('ws-clients', [], { nodeArgs: ['--max-old-space-size=8192'] });
      try {
        const { port } = await server.call<{ port: number }>('start', { topics: TOPICS_FOR_CLIENTS });
        const before = await server.call<{ rss: number }>('stats');
        const c = await clients.call<{ seconds: number }>('connect', { url: `ws://127.0.0.1:${port}/ws`, n, protocol: 'tidewire', selector: 'items/**', probes: 50, concurrency: 200 });
        await new Promise((r) => setTimeout(r, 500));
        const connected = await server.call<{ rss: number; sessions: number }>('stats');
        if (connected.sessions !== n) throw new Error(`server has ${connected.sessions} sessions, expected ${n}`);
        const run: ClientRun = { clients: n, rssBefore: before.rss, rssConnected: connected.rss, perConnection: (connected.rss - before.rss) / n, steps: [], saturatedBy: null };
        clientRuns.push(run);
        ctx.log(`scaling: ${num(n)} clients connected in ${c.seconds.toFixed(1)} s, ${num(run.perConnection / 1024, 1)} KiB RSS per connection`);
        let previousRate = 0;
        for (const target of targets) {
          const rate = Math.max(10, Math.round(target / n));
          if (rate === previousRate) continue;
          previousRate = rate;
          const s = await measureStep({ writer: server, clients, server, pgUrl: '', table: '', rows: TOPICS_FOR_CLIENTS, set: '', rate, warmSeconds: 1, seconds, drainMs: 300, maxProbes: 50 });
          run.steps.push(s);
          const why = saturation(s);
          ctx.log(`scaling: ${num(n)} clients, ${num(rate)} changes/s: ${num(s.deliveriesPerSecond)} deliveries/s (${(s.delivered * 100).toFixed(0)}%), p50 ${ms(s.window.latencyMs.p50)}, p99 ${ms(s.window.latencyMs.p99)}; cores server ${s.cpu.cores.server} clients ${s.cpu.cores.clients}${why ? ` — saturated: ${why}` : ''}`);
          if (why) {
            run.saturatedBy = why;
            break;
          }
        }
      } finally {
        await clients.stop();
        await server.stop();
      }
    }

    const peak = (r: ClientRun) => r.steps.reduce((b, s) => (s.deliveriesPerSecond > b.deliveriesPerSecond ? s : b), r.steps[0]);
    const caveats = [
      ...clientRuns.flatMap((r) => r.steps.filter((s) => loadGeneratorLimit(s)).slice(0, 1).map((s) => `${num(r.clients)} clients: ${loadGeneratorLimit(s)} from ${num(s.writer.rate)} changes/s on — deliveries/s there is a floor for the server.`)),
    ];
    return {
      summary:
        `Topics: a fresh process per size inserts N rows of the ingest suite's 10-column table (as pgoutput text) through the production TableMapper → Pipeline → TopicStore → InProcessHandoff (no subscribers), ` +
        `then applies ${num(updates)} updates of 1–3 columns to random rows, in batches of 1,000; memory is V8 heap (and RSS) growth per topic after a full GC. ` +
        `Connections: a DistributionServer (default settings) fed in-process by a source applying updates to ${TOPICS_FOR_CLIENTS} topics (12-column order rows, 3 fields changing) every 5 ms; ` +
        `N clients in another process all subscribed to every topic; the offered rate is stepped up (${targets.map((t) => num(t)).join(', ')} deliveries/s offered) until deliveries fall behind, p99 passes 1 s or clients are dropped. ` +
        `Latency here is apply-to-client (no Postgres), ${seconds} s per step after 1 s of warm-up.`,
      command: `npm run bench -- --only scaling${ctx.quick ? ' --quick' : ''}`,
      tables: [
        {
          title: 'Topic state as it grows',
          columns: ['topics', 'inserts/s (new topics)', 'updates/s', 'heap per topic', 'RSS per topic', 'RSS at the end'],
          rows: topicRuns.map((r) => [num(r.topics), num(r.insertsPerSecond), num(r.updatesPerSecond), `${num(r.heapPerTopic)} B`, `${num(r.rssPerTopic)} B`, mib(r.rss)]),
        },
        {
          title: 'Connections: peak deliveries/s and memory',
          columns: ['clients', 'peak deliveries/s', 'at changes/s', 'p99 there', 'saturated by', 'RSS per connection (subscribed, idle)'],
          rows: clientRuns.map((r) => {
            const p = peak(r);
            return [num(r.clients), num(p.deliveriesPerSecond), num(p.writer.rate), ms(p.window.latencyMs.p99), r.saturatedBy ?? 'not saturated', `${num(r.perConnection / 1024, 1)} KiB`];
          }),
        },
        {
          title: 'Every step',
          columns: ['clients', 'changes/s', 'deliveries/s', 'delivered', 'p50', 'p99', 'p99.9', 'bytes/delivery', 'server cores', 'clients cores', 'limit'],
          rows: clientRuns.flatMap((r) =>
            r.steps.map((s) => [
              num(r.clients), num(s.writer.rate), num(s.deliveriesPerSecond), `${(s.delivered * 100).toFixed(0)}%`, ms(s.window.latencyMs.p50), ms(s.window.latencyMs.p99), ms(s.window.latencyMs.p999),
              num(s.bytesPerDelivery, 0), s.cpu.cores.server.toFixed(2), s.cpu.cores.clients.toFixed(2), saturation(s) ?? loadGeneratorLimit(s) ?? '',
            ]),
          ),
        },
      ],
      charts: [
        {
          id: 'scaling-topics-throughput',
          title: 'Topic-state throughput as topics grow',
          x: { label: 'topics', log: true },
          y: { label: 'changes per second' },
          series: [
            { label: 'updates/s (1–3 columns)', points: topicRuns.map((r) => [r.topics, r.updatesPerSecond] as [number, number]) },
            { label: 'inserts/s (new topics)', points: topicRuns.map((r) => [r.topics, r.insertsPerSecond] as [number, number]) },
          ],
        },
        {
          id: 'scaling-topics-memory',
          title: 'Memory per topic as topics grow',
          x: { label: 'topics', log: true },
          y: { label: 'bytes per topic' },
          series: [
            { label: 'V8 heap per topic', points: topicRuns.map((r) => [r.topics, r.heapPerTopic] as [number, number]) },
            { label: 'RSS per topic', points: topicRuns.map((r) => [r.topics, r.rssPerTopic] as [number, number]) },
          ],
        },
        {
          id: 'scaling-clients-deliveries',
          title: 'Peak deliveries per second as connections grow',
          x: { label: 'connected clients (all subscribed to everything)', log: true },
          y: { label: 'deliveries per second' },
          series: [{ label: 'peak deliveries/s', points: clientRuns.map((r) => [r.clients, peak(r).deliveriesPerSecond] as [number, number]) }],
        },
        {
          id: 'scaling-clients-memory',
          title: 'Server memory per connection',
          x: { label: 'connected clients', log: true },
          y: { label: 'KiB of RSS per connection' },
          series: [{ label: 'RSS per subscribed, idle connection', points: clientRuns.map((r) => [r.clients, r.perConnection / 1024] as [number, number]) }],
        },
        {
          id: 'scaling-latency-vs-rate',
          title: 'Apply-to-client latency as the change rate grows',
          x: { label: 'row changes per second', log: true },
          y: { label: 'latency (ms)', log: true },
          series: clientRuns.flatMap((r) =>
            (['p50', 'p99'] as const).map((q) => ({
              label: `${q}, ${num(r.clients)} clients`,
              points: r.steps.map((s) => [s.writer.rate, Math.max(0.01, s.window.latencyMs[q])] as [number, number]),
            })),
          ),
        },
      ],
      caveats,
      data: { topicRuns, clientRuns, topicsForClients: TOPICS_FOR_CLIENTS },
    };
  },
};

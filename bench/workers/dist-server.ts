/**
 * Distribution alone: DistributionServer fed by an in-process source that applies updates to
 * `topics` topics through Pipeline → TopicStore → InProcessHandoff at a steady rate (one batch
 * every 5 ms), stamping `sent_us` at apply time. No Postgres: this isolates fan-out, batching and
 * sockets. `run` has the writer's signature (bench/workers/writer.ts) so the same step code drives it.
 */
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../../services/config/config.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';
import { benchLogger } from '../lib/quiet-logger.ts';
import { Samples, summarize } from '../lib/stats.ts';
import { serve } from '../lib/serve.ts';
import { profileHandlers } from '../lib/profiler.ts';

const store = new TopicStore();
const handoff = new InProcessHandoff(store);
const pipeline = new Pipeline(store, handoff);
let server: DistributionServer | null = null;
let topics = 0;
let version = 0;
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const SOURCE = 'bench';

function row(id: number, v: number): TopicUpdate {
  return {
    path: `items/${id}`,
    source: SOURCE,
    value: {
      id, customer: id % 97, status: 'open', qty: v % 100, price: '12.50', currency: 'EUR',
      ship_to: `${id % 500} Harbour Street, Flat ${id % 40}, Portsmouth PO1 ${id % 9}AB`,
      note: `leave with the neighbour if nobody answers (order ${id})`, flag: id % 2 === 0, v, sent_us: nowUs(), created_at: '2025-01-01T09:00:00.123456+00',
    },
  };
}

async function start(p: { topics: number; flushIntervalMs?: number }) {
  topics = p.topics;
  const rows: TopicUpdate[] = [];
  for (let id = 1; id <= topics; id++) rows.push(row(id, 0));
  await pipeline.apply(rows);
  const config = parseConfig({ server: { host: '127.0.0.1', port: 0, ...(p.flushIntervalMs !== undefined ? { flushIntervalMs: p.flushIntervalMs } : {}) } }, {});
  server = new DistributionServer(handoff, config.server, { logger: benchLogger('error'), heartbeatIntervalMs: 0 });
  return server.listen();
}

let cursor = 0;
async function run(p: { rate: number; seconds: number; tickMs?: number }) {
  const tick = p.tickMs ?? 5;
  const t0 = performance.now();
  const end = t0 + p.seconds * 1000;
  let sent = 0;
  let statements = 0;
  let maxBatch = 0;
  const exec = new Samples();
  version++;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - t0) / 1000) * p.rate) - sent;
    if (due > 0) {
      const out: TopicUpdate[] = new Array(due);
      for (let i = 0; i < due; i++) out[i] = row((cursor++ % topics) + 1, ++version);
      const s0 = performance.now();
      await pipeline.apply(out);
      exec.push(performance.now() - s0);
      sent += due;
      statements++;
      maxBatch = Math.max(maxBatch, due);
    }
    await new Promise((r) => setTimeout(r, tick - ((performance.now() - t0) % tick)));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { sent, seconds, rate: sent / seconds, statements, maxBatch, statementMs: summarize(exec.values()) };
}

function stats() {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, sessions: server?.sessionCount ?? 0, distribution: server ? { ...server.stats } : null };
}

serve({ start, run, stats, ...profileHandlers }, async () => {
  await server?.close();
});

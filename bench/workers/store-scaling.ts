/**
 * Topic state as it grows: N rows inserted through the production TableMapper → Pipeline →
 * TopicStore → InProcessHandoff (no subscribers), then random updates of 1–3 columns. Run in a
 * fresh process per size (with --expose-gc) so memory per topic is measured cleanly.
 */
import { performance } from 'node:perf_hooks';
import type { TopicUpdate } from '../../core/topic.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { rawRow, syntheticMapper } from '../lib/synthetic-table.ts';
import { benchLogger } from '../lib/quiet-logger.ts';
import { serve } from '../lib/serve.ts';

const BATCH = 1000;

async function run(p: { topics: number; updates: number }) {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  const base = process.memoryUsage();
  const store = new TopicStore();
  const pipeline = new Pipeline(store, new InProcessHandoff(store));
  const mapper = syntheticMapper(benchLogger());
  let t0 = performance.now();
  for (let i = 0; i < p.topics; i += BATCH) {
    const out: TopicUpdate[] = [];
    for (let id = i + 1; id <= Math.min(p.topics, i + BATCH); id++) mapper.insert(rawRow(id), out);
    await pipeline.apply(out);
  }
  const insertSeconds = (performance.now() - t0) / 1000;
  gc();
  const filled = process.memoryUsage();
  // Updates over random rows; generation g picks which 1–3 columns change (see rawRow).
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  t0 = performance.now();
  let gen = 1;
  for (let i = 0; i < p.updates; i += BATCH) {
    const out: TopicUpdate[] = [];
    for (let k = 0; k < BATCH; k++) mapper.update(rawRow(1 + Math.floor(rand() * p.topics), gen++), null, out);
    await pipeline.apply(out);
  }
  const updateSeconds = (performance.now() - t0) / 1000;
  if (store.size !== p.topics) throw new Error(`store holds ${store.size} topics, expected ${p.topics}`);
  gc();
  const after = process.memoryUsage();
  return {
    topics: p.topics,
    updates: p.updates,
    insertsPerSecond: p.topics / insertSeconds,
    updatesPerSecond: p.updates / updateSeconds,
    changesEmitted: pipeline.changesEmitted,
    heapPerTopic: (filled.heapUsed - base.heapUsed) / p.topics,
    rssPerTopic: (filled.rss - base.rss) / p.topics,
    heapUsed: after.heapUsed,
    rss: after.rss,
  };
}

serve({ run });

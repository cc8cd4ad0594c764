/**
 * tidewire as users run it: a TidewireService (PostgresConnector → Pipeline → TopicStore →
 * DistributionServer) in its own process. The parent reads its counters and, for the restart
 * suite, the phases of start(): slot created, snapshot applied (from the connector's own log
 * lines), streaming (start() resolved).
 */
import { readFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';
import { parseSelector } from '../../core/selector.ts';
import { Samples, summarize } from '../lib/stats.ts';
import { profileHandlers } from '../lib/profiler.ts';
import { serve } from '../lib/serve.ts';

let service: TidewireService | null = null;
const marks: Record<string, number> = {};
const logged: Array<Record<string, unknown>> = [];
let t0 = 0;
/** Commit → hand-off latency (ms): rows carrying `sent_us`, seen when their batch reaches distribution. */
let handoffLatency = new Samples();
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

/** Captures the service's info lines that mark start-up phases; passes warnings and errors to stderr. */
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    const now = performance.now();
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      const rec = JSON.parse(line) as { msg: string; level: number };
      // Audit records are decisions (the security suite is refused on purpose once), not problems.
      if (rec.level >= 40 && !rec.msg.startsWith('security is off') && !(rec as { audit?: boolean }).audit) process.stderr.write(`${line}\n`);
      if (!(rec.msg in marks)) marks[rec.msg] = (now - t0) / 1000;
      if (rec.msg === 'snapshot applied' || rec.msg === 'snapshot of table applied') logged.push(rec);
    }
    done();
  },
});

async function start(p: { config: unknown; logLevel?: string }) {
  const config = parseConfig(p.config, {});
  t0 = performance.now();
  const logger = pino({ level: p.logLevel ?? 'info' }, sink);
  service = new TidewireService(config, { logger });
  // A listener beside distribution's: when a batch is handed off, how old is each row's commit?
  service.handoff.subscribe((batch) => {
    const now = nowUs();
    for (const c of batch.changes) {
      const sent = c.topic.value.sent_us;
      if (typeof sent === 'number') handoffLatency.push((now - sent) / 1000);
    }
  });
  const { port } = await service.start();
  const seconds = (performance.now() - t0) / 1000;
  startQueueWatch();
  return { port, seconds, marks, logged, topics: service.store.size };
}

/**
 * The send queue's peak since start: sampled every 5 ms (bytes queued for clients and not yet
 * handed to their sockets, over all sessions), so a paged answer that overran the queue shows.
 */
let queuePeak = { bytes: 0, messages: 0, socketBytes: 0 };
let queueTimer: NodeJS.Timeout | null = null;
function startQueueWatch() {
  queuePeak = { bytes: 0, messages: 0, socketBytes: 0 };
  queueTimer ??= setInterval(() => {
    if (!service) return;
    const q = service.distribution.queueDepth();
    queuePeak.bytes = Math.max(queuePeak.bytes, q.bytes);
    queuePeak.messages = Math.max(queuePeak.messages, q.messages);
    queuePeak.socketBytes = Math.max(queuePeak.socketBytes, q.socketBytes);
  }, 5);
  queueTimer.unref();
}

function stats() {
  const s = service!;
  const mem = process.memoryUsage();
  return {
    topics: s.store.size,
    sessions: s.distribution.sessionCount,
    distribution: { ...s.distribution.stats },
    queue: s.distribution.queueDepth(),
    updatesApplied: s.pipeline.updatesApplied,
    changesEmitted: s.pipeline.changesEmitted,
    health: s.health(),
    ready: s.readiness(),
    queuePeak,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
  };
}

function topic(p: { path: string }) {
  const t = service!.store.get(p.path);
  return t ? { version: t.version, value: t.value } : null;
}

/** Garbage-collection pauses of the server's main thread since the last call: they show up as latency tails. */
let gcPauses: number[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push(e.duration);
}).observe({ entryTypes: ['gc'] });

function gc() {
  const p = gcPauses;
  gcPauses = [];
  return { count: p.length, totalMs: p.reduce((a, b) => a + b, 0), maxMs: p.length ? Math.max(...p) : 0, over10ms: p.filter((x) => x > 10).length };
}

/** path → current version of every topic the selector matches. */
function versions(p: { selector: string }) {
  const out: Record<string, number> = {};
  service!.store.forEachMatching(parseSelector(p.selector), (t) => {
    out[t.path] = t.version;
  });
  return out;
}

/** The hand-off latency since the last call (and start a new window). */
function handoff() {
  const r = summarize(handoffLatency.values());
  handoffLatency = new Samples();
  return r;
}

/** After full garbage collections (needs --expose-gc): what the process holds. */
function memory() {
  if (!globalThis.gc) throw new Error('start the service worker with --expose-gc');
  globalThis.gc();
  globalThis.gc();
  return { ...process.memoryUsage(), ...rssParts() };
}

/**
 * RSS split as Linux counts it (/proc/self/status): anonymous (the process's own memory: heap,
 * buffers, native allocations) and file-backed (here mostly the store's memory-mapped pages,
 * page cache the kernel may reclaim under pressure).
 */
function rssParts(): { rssAnon: number; rssFile: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssAnon: kib('RssAnon'), rssFile: kib('RssFile') + kib('RssShmem') };
}

// As `tidewire start` does on SIGTERM: a graceful stop (flushes the durable state), then exit.
process.once('SIGTERM', () => {
  void (service?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
});

serve({ start, stats, topic, versions, handoff, gcPauses: gc, gc: () => (globalThis.gc?.(), process.memoryUsage()), memory, ...profileHandlers }, async () => {
  await service?.stop();
});

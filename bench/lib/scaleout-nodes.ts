/**
 * The nodes of a scaled-out deployment (issue #15) for the scaleout suite: configurations of role
 * all, ingest and edge on one Postgres and one Kafka broker, a node forked and timed to `/ready`,
 * and what a node says it holds (its own `/metrics` and `/health`, not the bench's guess).
 */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { withChildren } from './proc.ts';
import { Worker } from './worker.ts';

/** One table read by a node that reads Postgres (role all or ingest). */
export interface TableSource {
  readonly pgUrl: string;
  readonly table: string;
  /** Slot and publication name: one per node. */
  readonly slot: string;
  readonly path: string;
}

export interface HandoffTopic {
  readonly brokers: readonly string[];
  readonly topic: string;
}

const server = (port: number) => ({ host: '127.0.0.1', port });

export function allConfig(s: TableSource, port = 0): object {
  return {
    server: server(port),
    postgres: { url: s.pgUrl, slot: s.slot, publication: s.slot, tables: [{ table: `public.${s.table}`, path: s.path }] },
    log: { level: 'warn' },
  };
}

/** An ingest node keeps the whole log (retentionMs -1), as docs/OPERATIONS.md asks for edges that start cold. */
export function ingestConfig(s: TableSource, h: HandoffTopic, port = 0): object {
  return { ...allConfig(s, port), role: 'ingest', handoff: { kafka: { brokers: [...h.brokers], topic: h.topic, retentionMs: -1 } } };
}

export function edgeConfig(h: HandoffTopic, port = 0): object {
  return { server: server(port), role: 'edge', handoff: { kafka: { brokers: [...h.brokers], topic: h.topic } }, log: { level: 'warn' } };
}

export interface Node {
  readonly w: Worker;
  readonly port: number;
}

/** Forks bench/workers/service.ts and starts `config` (an edge resolves once it caught up with the log). */
export async function startNode(config: object, heapMiB = 2048): Promise<Node> {
  const w = await Worker.start('service', [], { nodeArgs: [`--max-old-space-size=${heapMiB}`] });
  const { port } = await w.call<{ port: number }>('start', { config, logLevel: 'warn' });
  return { w, port };
}

export interface TimedStart extends Node {
  /** Seconds from the fork to the worker's first line of code (Node, tsx, the service's imports). */
  readonly bootSeconds: number;
  /** Seconds from the fork to the HTTP server listening (GET /ready answers at all, 503 first). */
  readonly listeningSeconds: number;
  /** Seconds from the fork to GET /ready answering 200. */
  readonly readySeconds: number;
  /** CPU seconds (user + system) of the node's process from the fork to ready. */
  readonly cpuSeconds: number;
  /** Peak RSS up to ready (VmHWM). */
  readonly peakRssBytes: number;
  /** GET /ready answers seen before the first 200, by status. */
  readonly notReady: Record<string, number>;
}

export interface TimedStartOptions {
  readonly heapMiB: number;
  readonly timeoutMs: number;
  /** More node flags for the node's process (e.g. `--max-semi-space-size=64`). */
  readonly nodeArgs?: readonly string[];
  /** A CPU profile from the worker's first line to ready, written here (bench/lib/profiler.ts). */
  readonly profileFile?: string;
}

/**
 * A cold start as an operator sees it: fork, then GET /ready every 20 ms until it answers 200.
 * `config` must listen on `port` (known before the start: an edge's start() resolves only once ready).
 */
export async function timedStart(config: object, port: number, o: TimedStartOptions): Promise<TimedStart> {
  const forkedAt = performance.now();
  const w = await Worker.start('service', [], { nodeArgs: [`--max-old-space-size=${o.heapMiB}`, ...(o.nodeArgs ?? [])] });
  const bootSeconds = (performance.now() - forkedAt) / 1000;
  if (o.profileFile) await w.call('profileStart', { intervalUs: 1000 });
  let failure: unknown = null;
  w.call('start', { config, logLevel: 'warn' }).catch((err: unknown) => (failure = err));
  const notReady: Record<string, number> = {};
  let listeningSeconds = NaN;
  const deadline = forkedAt + o.timeoutMs;
  for (;;) {
    if (failure) throw failure;
    const r = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
    if (r) {
      await r.arrayBuffer();
      if (Number.isNaN(listeningSeconds)) listeningSeconds = (performance.now() - forkedAt) / 1000;
      if (r.status === 200) break;
      notReady[r.status] = (notReady[r.status] ?? 0) + 1;
    }
    if (performance.now() > deadline) {
      await w.stop();
      throw new Error(`scaleout: the node on port ${port} was not ready ${o.timeoutMs / 1000} s after its fork`);
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  const readySeconds = (performance.now() - forkedAt) / 1000;
  w.watch.sample();
  const { cpuSeconds, peakRssBytes } = { cpuSeconds: w.watch.cpu, peakRssBytes: w.watch.hwm };
  if (o.profileFile) await w.call('profileStop', { file: o.profileFile });
  return { w, port, bootSeconds, listeningSeconds, readySeconds, cpuSeconds, peakRssBytes, notReady };
}

/** A gauge or counter without labels from the node's GET /metrics (Prometheus text). */
export async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`scaleout: GET /metrics on port ${port} has no ${name}`);
  return Number(m[1]);
}

/** GET /health's `handoff` member (an edge): its offset, the log's end, and the records behind. */
export async function edgeLag(port: number): Promise<{ offset: string; end: string; behind: number }> {
  const body = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { handoff?: { offset: string; end: string; behind: number } };
  if (!body.handoff) throw new Error(`scaleout: GET /health on port ${port} has no handoff member: not an edge`);
  return body.handoff;
}

/** The high watermark of the hand-off topic's one partition: records in the log. */
export async function logEnd(h: HandoffTopic): Promise<number> {
  const admin = new Kafka({ brokers: [...h.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(h.topic);
    return Number(offsets.find((p) => p.partition === 0)?.high ?? 0);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Waits until the log's end stops moving for `quietMs`: the ingest node's start() resolves once
 * its snapshot is applied, and its last appends may still be in flight.
 */
export async function waitForQuietLog(h: HandoffTopic, quietMs: number, maxMs: number): Promise<number> {
  const deadline = performance.now() + maxMs;
  let last = -1;
  let since = performance.now();
  for (;;) {
    const end = await logEnd(h);
    if (end !== last) {
      last = end;
      since = performance.now();
    } else if (end > 0 && performance.now() - since >= quietMs) {
      return end;
    }
    if (performance.now() > deadline) throw new Error(`scaleout: the hand-off log ${h.topic} was still growing (or empty: ${end} records) after ${maxMs / 1000} s`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** The Kafka broker's JVM (a child of this process, test/support/kafka-broker.ts), found at each window's end. */
export function brokerPids(): number[] {
  return withChildren(process.pid).filter((pid) => {
    try {
      return pid !== process.pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'java';
    } catch {
      return false;
    }
  });
}

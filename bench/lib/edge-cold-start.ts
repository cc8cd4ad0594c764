/**
 * An edge's cold start (issue #15): an ingest node that read a table of N rows has published them
 * to the hand-off log; a new edge process is forked and timed to GET /ready answering 200 (503
 * until it applied the log up to the end offset it saw at start). Each start is checked to hold
 * what the ingest node holds: its own tidewire_topics metric, /health's records behind, and a few
 * topics compared version and value with the ingest node's.
 */
import { join } from 'node:path';
import { freePort } from '../../test/support/postgres.ts';
import { type ProfileSummary, summarizeProfile } from './cpuprofile.ts';
import { num } from './format.ts';
import type { BenchPostgres } from './postgres.ts';
import { CpuWindow } from './proc.ts';
import { type HandoffTopic, type Node, type TimedStart, brokerPids, edgeConfig, edgeLag, ingestConfig, metric, startNode, timedStart, waitForQuietLog } from './scaleout-nodes.ts';
import { createRowsTable } from './tables.ts';

const TABLE = 'so_cold';

export interface ColdStartOptions {
  readonly pg: BenchPostgres;
  readonly brokers: readonly string[];
  readonly topics: number;
  readonly reps: number;
  readonly heapMiB: number;
  /** Also one profiled start (not measured), its profile written into this folder. */
  readonly profileDir: string | null;
  readonly log: (line: string) => void;
}

export interface ColdStartRun {
  readySeconds: number;
  bootSeconds: number;
  listeningSeconds: number;
  cpuSeconds: number;
  /** The broker's CPU seconds from the fork to ready: serving the edge's fetches. */
  brokerCpuSeconds: number;
  peakRssBytes: number;
  /** What the edge said once ready: its tidewire_topics metric and /health's handoff member. */
  topicsHeld: number;
  behind: number;
  offset: string;
  notReady: Record<string, number>;
}

export interface ColdStartResult {
  topics: number;
  /** Records in the hand-off log when the edges started. */
  logRecords: number;
  /** Seconds the ingest node took to snapshot the table (start() resolved). */
  ingestSeconds: number;
  tableSeconds: number;
  runs: ColdStartRun[];
  profile: (ProfileSummary & { readySeconds: number }) | null;
}

/** Paths compared between the ingest node and each edge: first, middle, last row. */
const samplePaths = (n: number) => [1, Math.ceil(n / 2), n].map((id) => `cold/${id}`);

export async function measureColdStart(o: ColdStartOptions): Promise<ColdStartResult> {
  const t0 = performance.now();
  await createRowsTable(o.pg, TABLE, o.topics);
  const tableSeconds = (performance.now() - t0) / 1000;
  const handoff: HandoffTopic = { brokers: o.brokers, topic: 'tidewire-so-cold' };
  o.log(`scaleout: cold start: ${num(o.topics)} rows written in ${tableSeconds.toFixed(1)} s; starting the ingest node`);
  const t1 = performance.now();
  const ingest = await startNode(ingestConfig({ pgUrl: o.pg.url, table: TABLE, slot: 'bench_so_cold', path: 'cold/{id}' }, handoff), o.heapMiB);
  try {
    const ingestSeconds = (performance.now() - t1) / 1000;
    const held = (await ingest.w.call<{ topics: number }>('stats')).topics;
    if (held !== o.topics) throw new Error(`scaleout: the ingest node holds ${held} topics after its snapshot, expected ${o.topics}`);
    const logRecords = await waitForQuietLog(handoff, 2000, 600_000);
    o.log(`scaleout: cold start: the ingest node read ${num(o.topics)} rows in ${ingestSeconds.toFixed(1)} s; the hand-off log holds ${num(logRecords)} records`);
    const expected = await sampleTopics(ingest, o.topics);
    const runs: ColdStartRun[] = [];
    for (let rep = 0; rep < o.reps; rep++) {
      const run = await edgeStart(handoff, o, logRecords, expected);
      runs.push(run);
      o.log(`scaleout: cold start ${rep + 1}/${o.reps}: fork → /ready ${run.readySeconds.toFixed(2)} s (boot ${run.bootSeconds.toFixed(2)} s, listening ${run.listeningSeconds.toFixed(2)} s), edge CPU ${run.cpuSeconds.toFixed(1)} s, broker CPU ${run.brokerCpuSeconds.toFixed(1)} s, ${num(run.topicsHeld)} topics held`);
    }
    let profile: ColdStartResult['profile'] = null;
    if (o.profileDir) {
      const file = join(o.profileDir, 'edge-cold-start.cpuprofile');
      const port = await freePort();
      const p = await timedStart(edgeConfig(handoff, port), port, { heapMiB: o.heapMiB, timeoutMs: 600_000, profileFile: file });
      await p.w.stop();
      profile = { ...summarizeProfile(file, 15), readySeconds: p.readySeconds };
      o.log(`scaleout: cold start profiled (not measured): ready in ${p.readySeconds.toFixed(2)} s, ${num(profile.totalMs / 1000, 1)} s of samples`);
    }
    return { topics: o.topics, logRecords, ingestSeconds, tableSeconds, runs, profile };
  } finally {
    await ingest.w.stop(60_000);
  }
}

async function edgeStart(handoff: HandoffTopic, o: ColdStartOptions, logRecords: number, expected: Map<string, string>): Promise<ColdStartRun> {
  const port = await freePort();
  const broker = new CpuWindow({ broker: brokerPids });
  let edge: TimedStart | null = null;
  try {
    edge = await timedStart(edgeConfig(handoff, port), port, { heapMiB: o.heapMiB, timeoutMs: 600_000 });
    const brokerCpu = broker.end();
    const topicsHeld = await metric(port, 'tidewire_topics');
    const lag = await edgeLag(port);
    if (topicsHeld !== o.topics) throw new Error(`scaleout: the edge was ready holding ${topicsHeld} topics (tidewire_topics), the ingest node published ${o.topics}`);
    if (lag.behind !== 0 || Number(lag.offset) !== logRecords) throw new Error(`scaleout: the edge was ready at offset ${lag.offset} (${lag.behind} behind), the log holds ${logRecords} records`);
    const got = await sampleTopics(edge, o.topics);
    for (const [path, want] of expected) {
      if (got.get(path) !== want) throw new Error(`scaleout: the edge holds ${path} as ${got.get(path)}, the ingest node as ${want}`);
    }
    return {
      readySeconds: edge.readySeconds,
      bootSeconds: edge.bootSeconds,
      listeningSeconds: edge.listeningSeconds,
      cpuSeconds: edge.cpuSeconds,
      brokerCpuSeconds: brokerCpu.cores.broker * brokerCpu.seconds,
      peakRssBytes: edge.peakRssBytes,
      topicsHeld,
      behind: lag.behind,
      offset: lag.offset,
      notReady: edge.notReady,
    };
  } finally {
    await edge?.w.stop(60_000);
  }
}

/** Version and value of the sample topics, as one comparable text each. */
async function sampleTopics(node: Node, n: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const path of samplePaths(n)) {
    const t = await node.w.call<{ version: number; value: unknown } | null>('topic', { path });
    if (t === null) throw new Error(`scaleout: the node on port ${node.port} holds no topic ${path}`);
    out.set(path, JSON.stringify(t));
  }
  return out;
}

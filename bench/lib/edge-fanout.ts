/**
 * Fan-out CPU per delivery on each edge as edges are added (issue #15): k edges replicate one
 * hand-off log, each serves its own clients (a load-generator process per edge), the writer
 * commits at a steady rate through the ingest node. Per edge: CPU seconds (utime + stime of its
 * process over the window) per million deliveries its clients counted. Scaling out is sound when
 * that figure stays flat as k grows: no edge pays for another's clients.
 */
import { CpuWindow, type Watched, sampleProc } from './proc.ts';
import { type HandoffTopic, type Node, brokerPids, edgeConfig, startNode } from './scaleout-nodes.ts';
import { type ClientWindow, type WriterRun, drain, probeCount } from './step.ts';
import { Worker } from './worker.ts';

export interface FanoutOptions {
  readonly handoff: HandoffTopic;
  readonly writer: Worker;
  readonly ingest: Node;
  readonly write: { readonly pgUrl: string; readonly table: string; readonly rows: number; readonly set: string };
  readonly rate: number;
  readonly clientsPerEdge: number;
  readonly selector: string;
  readonly warmSeconds: number;
  readonly seconds: number;
}

export interface EdgeShare {
  deliveries: number;
  /** Deliveries counted ÷ (rows written × clients of this edge). */
  delivered: number;
  cpuSeconds: number;
  cpuSecondsPerMillion: number;
  clientCores: number;
  /** Deliveries per WebSocket frame its clients read: how much each flush carried. */
  deliveriesPerFrame: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

export interface FanoutStep {
  edges: number;
  writer: WriterRun;
  perEdge: EdgeShare[];
  cores: Record<string, number>;
  machineBusy: number;
  otherCores: number;
}

/** One step: `edges` fresh edge processes with their clients, a measured window, then all stopped. */
export async function fanoutStep(edges: number, o: FanoutOptions): Promise<FanoutStep> {
  const nodes: Node[] = [];
  const clients: Worker[] = [];
  try {
    nodes.push(...(await Promise.all(Array.from({ length: edges }, () => startNode(edgeConfig(o.handoff))))));
    for (const node of nodes) {
      const c = await Worker.start('ws-clients', [], { nodeArgs: ['--max-old-space-size=2048'] });
      clients.push(c);
      await c.call('connect', { url: `ws://127.0.0.1:${node.port}/ws`, n: o.clientsPerEdge, protocol: 'tidewire', selector: o.selector, probes: o.clientsPerEdge });
      // Each load generator parses what one would alone: the probes' budget is split between the edges.
      await c.call('probes', { count: probeCount(o.rate, o.clientsPerEdge, { probeBudget: 100_000 / edges }) });
    }
    const run = { ...o.write, rate: o.rate };
    await o.writer.call('run', { ...run, seconds: o.warmSeconds });
    // The warm-up's tail must not be counted in the window (on a busy machine it is still in flight).
    for (const c of clients) await drain(c, 10_000);
    for (const c of clients) await c.call('reset');
    const watched: Record<string, Watched> = { ingest: o.ingest.w.child.pid!, broker: brokerPids, writer: o.writer.child.pid! };
    nodes.forEach((n, i) => (watched[`edge${i}`] = n.w.child.pid!));
    clients.forEach((c, i) => (watched[`clients${i}`] = c.child.pid!));
    const cpu = new CpuWindow(watched);
    // Each edge's CPU seconds exactly (CpuWindow rounds cores to 0.01, ±3% of an edge's share here).
    const edgeCpu = () => nodes.map((n) => sampleProc(n.w.child.pid!)?.cpu ?? NaN);
    const cpu0 = edgeCpu();
    const writer = await o.writer.call<WriterRun>('run', { ...run, seconds: o.seconds });
    await new Promise((r) => setTimeout(r, 500));
    const cpu1 = edgeCpu();
    const used = cpu.end();
    const perEdge: EdgeShare[] = [];
    for (let i = 0; i < edges; i++) {
      const w = await clients[i].call<ClientWindow>('collect');
      if (w.deliveries === 0 || w.latencyMs.count === 0) throw new Error(`scaleout: fan-out with ${edges} edge(s): the clients of edge ${i + 1} counted no delivery`);
      const cpuSeconds = cpu1[i] - cpu0[i];
      perEdge.push({
        deliveries: w.deliveries,
        delivered: w.deliveries / (writer.sent * w.clients),
        cpuSeconds,
        cpuSecondsPerMillion: (cpuSeconds / w.deliveries) * 1e6,
        clientCores: used.cores[`clients${i}`],
        deliveriesPerFrame: w.deliveries / w.frames,
        latencyP50Ms: w.latencyMs.p50,
        latencyP99Ms: w.latencyMs.p99,
      });
    }
    return { edges, writer, perEdge, cores: used.cores, machineBusy: used.machineBusy, otherCores: used.otherCores };
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all(nodes.map((n) => n.w.stop()));
  }
}

/** One measured step of a distribution benchmark: a writer at a steady rate, clients counting. */
import { ms, num } from './format.ts';
import { CpuWindow, withChildren } from './proc.ts';
import type { LatencySummary } from './stats.ts';
import type { Worker } from './worker.ts';

export interface ClientWindow {
  seconds: number;
  clients: number;
  probes: number;
  frames: number;
  bytes: number;
  deliveries: number;
  meanProbeMessages: number;
  minProbeMessages: number;
  maxProbeMessages: number;
  bytesSpread: [number, number];
  closed: number[];
  latencyMs: LatencySummary;
  tracked: null | { deltas: number; values: number; removals: number; deliveredBytes: number; fullBytes: number; deltaBytes: number; compactDeltaBytes: number };
}

export interface WriterRun {
  sent: number;
  seconds: number;
  rate: number;
  statements: number;
  maxBatch: number;
  statementMs: LatencySummary;
}

export interface StepResult {
  rate: number;
  clients: number;
  writer: WriterRun;
  window: ClientWindow;
  cpu: ReturnType<CpuWindow['end']>;
  /** Commit → hand-off to distribution, inside the server (null when not measured). */
  handoffLatencyMs: LatencySummary | null;
  /** Deliveries received ÷ (rows updated × clients). */
  delivered: number;
  deliveriesPerSecond: number;
  bytesPerDelivery: number;
}

export interface StepOptions {
  writer: Worker;
  clients: Worker;
  server: Worker;
  pgUrl: string;
  table: string;
  rows: number;
  set: string;
  rate: number;
  warmSeconds: number;
  seconds: number;
  drainMs?: number;
  /** The writer commits one UPDATE every tickMs (default 5): fewer, larger transactions with a larger tick. */
  tickMs?: number;
  /** The server is bench/workers/service.ts: also measure commit → hand-off latency inside it. */
  handoffLatency?: boolean;
  /** The postmaster's pid: Postgres (backends, walsender) is then measured as a group. */
  postgresPid?: number;
  /**
   * Messages per second the probes may parse between them (default 100,000): probes =
   * clamp(budget ÷ rate, minProbes, maxProbes). Parsing every message on every client would make
   * the load generator, not the server, the limit on two cores.
   */
  probeBudget?: number;
  maxProbes?: number;
  minProbes?: number;
}

/** How many clients parse every message at `rate` changes/s. */
export function probeCount(rate: number, clients: number, o: Pick<StepOptions, 'probeBudget' | 'maxProbes' | 'minProbes'> = {}): number {
  const n = Math.floor((o.probeBudget ?? 100_000) / Math.max(1, rate));
  return Math.min(clients, o.maxProbes ?? 100, Math.max(o.minProbes ?? 5, n));
}

export async function measureStep(o: StepOptions): Promise<StepResult> {
  const base = { pgUrl: o.pgUrl, table: o.table, rows: o.rows, rate: o.rate, set: o.set, tickMs: o.tickMs };
  const { clients: clientCount } = await o.clients.call<{ clients: number }>('size');
  await o.clients.call('probes', { count: probeCount(o.rate, clientCount, o) });
  if (o.warmSeconds > 0) await o.writer.call('run', { ...base, seconds: o.warmSeconds });
  await new Promise((r) => setTimeout(r, 100));
  await o.clients.call('reset');
  if (o.handoffLatency) await o.server.call('handoff');
  const watched: Record<string, number | (() => number[])> = { server: o.server.child.pid!, clients: o.clients.child.pid! };
  if (o.writer !== o.server) watched.writer = o.writer.child.pid!;
  if (o.postgresPid) {
    const pm = o.postgresPid;
    watched.postgres = () => withChildren(pm);
  }
  const cpu = new CpuWindow(watched);
  const writer = await o.writer.call<WriterRun>('run', { ...base, seconds: o.seconds });
  await new Promise((r) => setTimeout(r, o.drainMs ?? 500));
  const used = cpu.end();
  const window = await o.clients.call<ClientWindow>('collect');
  const handoff = o.handoffLatency ? await o.server.call<LatencySummary>('handoff') : null;
  const expected = writer.sent * window.clients;
  return {
    rate: o.rate,
    clients: window.clients,
    writer,
    window,
    cpu: used,
    handoffLatencyMs: handoff,
    delivered: expected > 0 ? window.deliveries / expected : 0,
    deliveriesPerSecond: window.deliveries / writer.seconds,
    bytesPerDelivery: window.deliveries > 0 ? window.bytes / window.deliveries : 0,
  };
}

/** Why a step counts as saturated (the rate stepping stops there), or null. */
export function saturation(s: StepResult): string | null {
  if (s.window.closed.length > 0) return `${s.window.closed.length} clients dropped (codes ${[...new Set(s.window.closed)].join(', ')})`;
  if (s.delivered < 0.9) return `only ${(s.delivered * 100).toFixed(0)}% delivered in the window`;
  if (s.window.latencyMs.p99 > 1000) return `p99 ${ms(s.window.latencyMs.p99)}`;
  if (s.writer.rate < s.rate * 0.9) return `the source reached only ${num(s.writer.rate)} of ${num(s.rate)} changes/s`;
  return null;
}

/** Why a step shows the load generator (not the server) may be the limit, or null. */
export function loadGeneratorLimit(s: StepResult): string | null {
  const c = s.cpu.cores.clients ?? 0;
  if (c >= 0.85) return `load generator at ${Math.round(c * 100)}% of a core`;
  if (s.cpu.machineBusy >= 0.95) return `machine ${Math.round(s.cpu.machineBusy * 100)}% busy (both cores; ${s.cpu.otherCores.toFixed(2)} cores used by other jobs)`;
  // The server is one event loop: below ~0.8 of a core while deliveries fell behind, it was waiting
  // on sockets the clients did not drain (or on a CPU other processes held), not on its own work.
  if (s.delivered < 0.9 && s.cpu.cores.server < 0.8) {
    return `deliveries fell behind with the server at ${Math.round(s.cpu.cores.server * 100)}% of a core: clients (${Math.round(c * 100)}%) and other jobs (${s.cpu.otherCores.toFixed(2)} cores) held the CPU`;
  }
  return null;
}

/** Waits until the probes stop receiving (a saturated step leaves a backlog in the server's send queues). */
export async function drain(clients: Worker, maxMs = 30_000): Promise<number> {
  const t0 = performance.now();
  let last = -1;
  for (;;) {
    const w = await clients.call<ClientWindow>('collect');
    if (w.meanProbeMessages === last || performance.now() - t0 > maxMs) return performance.now() - t0;
    last = w.meanProbeMessages;
    await new Promise((r) => setTimeout(r, 500));
  }
}

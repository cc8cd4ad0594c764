/**
 * Does a node's own hand-off wait for Kafka? The writer commits at a steady rate while the broker's
 * JVM is stopped (SIGSTOP) for `pauseMs`, twice; the node's commit → hand-off latency (measured in
 * its process, bench/workers/service.ts) then shows whether its own clients, and the source
 * transactions after it, waited for the log. An all-in-one node, which has no log, is the control.
 */
import { brokerPids } from './scaleout-nodes.ts';
import type { LatencySummary } from './stats.ts';
import type { WriterRun } from './step.ts';
import type { Worker } from './worker.ts';

export interface PauseRun {
  readonly paused: boolean;
  readonly pauseMs: number;
  readonly transactionsPerSecond: number;
  readonly handoffMs: LatencySummary;
}

export interface PauseOptions {
  readonly node: Worker;
  readonly writer: Worker;
  readonly write: { readonly pgUrl: string; readonly table: string; readonly rows: number; readonly set: string; readonly rate: number };
  readonly seconds: number;
  readonly pauseMs: number;
  readonly paused: boolean;
}

export async function handoffWithBrokerPaused(o: PauseOptions): Promise<PauseRun> {
  const jvm = brokerPids();
  if (jvm.length !== 1) throw new Error(`scaleout: expected one Kafka broker JVM among this process's children, found ${jvm.length}`);
  await o.writer.call('run', { ...o.write, seconds: 1 });
  await o.node.call('handoff');
  const at = [0.3, 0.7].map((f) => f * o.seconds * 1000);
  const timers = o.paused
    ? at.map((ms) =>
        setTimeout(() => {
          signal(jvm[0], 'SIGSTOP');
          setTimeout(() => signal(jvm[0], 'SIGCONT'), o.pauseMs);
        }, ms),
      )
    : [];
  try {
    const w = await o.writer.call<WriterRun>('run', { ...o.write, seconds: o.seconds });
    await new Promise((r) => setTimeout(r, o.pauseMs + 1000));
    const handoffMs = await o.node.call<LatencySummary>('handoff');
    if (handoffMs.count === 0) throw new Error('scaleout: the node handed off no change while the writer ran');
    return { paused: o.paused, pauseMs: o.pauseMs, transactionsPerSecond: w.statements / w.seconds, handoffMs };
  } finally {
    for (const t of timers) clearTimeout(t);
    signal(jvm[0], 'SIGCONT');
  }
}

/** A broker already gone (the run failed and stopped it) is not this step's failure. */
function signal(pid: number, sig: 'SIGSTOP' | 'SIGCONT'): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

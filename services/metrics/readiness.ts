/**
 * Readiness: this node's topic state is complete and live. Every source has finished its snapshot
 * (Postgres) or its catch-up to the end offsets at start (Kafka) and is connected (`streaming`).
 * `/health` says the process is alive; `/ready` says a load balancer may send clients here.
 */
import type { SourceHealth } from '../../core/ingest.ts';

export interface Readiness {
  readonly ready: boolean;
  /** Why not, one line per source (or "shutting down"); empty when ready. */
  readonly reasons: string[];
  /**
   * The same without the sources' detail (positions, tables, errors): `postgres: snapshotting`.
   * What /ready tells a caller who is not a server-wide admin when security is on.
   */
  readonly brief: string[];
}

export function readiness(sources: readonly SourceHealth[], stopping = false, partOfTransaction = false): Readiness {
  const reasons: string[] = [];
  const brief: string[] = [];
  const both = (r: string, b = r) => (reasons.push(r), brief.push(b));
  if (stopping) both('shutting down');
  // A restart after a crash inside a transaction applied in parts: subscribes wait for its end.
  if (partOfTransaction) both('the state holds a part of a transaction a crash cut: waiting for the source to apply it to its end');
  for (const s of sources) {
    if (s.state === 'streaming') continue;
    both(`${s.name}: ${s.state}${s.detail ? ` (${s.detail})` : ''}`, `${s.name}: ${s.state}`);
  }
  if (sources.length === 0) both('no source is configured');
  return { ready: reasons.length === 0, reasons, brief };
}

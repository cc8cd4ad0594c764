/**
 * Readiness: this node's topic state is complete and live. Every source has finished its snapshot
 * (Postgres) or its catch-up to the end offsets at start (Kafka) and is connected (`streaming`).
 * `/health` says the process is alive; `/ready` says a load balancer may send clients here.
 */
import type { SourceHealth } from '../../connectors/source.ts';

export interface Readiness {
  readonly ready: boolean;
  /** Why not, one line per source (or "shutting down"); empty when ready. */
  readonly reasons: string[];
}

export function readiness(sources: readonly SourceHealth[], stopping = false): Readiness {
  const reasons: string[] = [];
  if (stopping) reasons.push('shutting down');
  for (const s of sources) {
    if (s.state === 'streaming') continue;
    reasons.push(`${s.name}: ${s.state}${s.detail ? ` (${s.detail})` : ''}`);
  }
  if (sources.length === 0) reasons.push('no source is configured');
  return { ready: reasons.length === 0, reasons };
}

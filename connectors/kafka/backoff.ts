/**
 * Restart delays after the consumer crashed: exponential from `initialMs`, capped at `maxMs`, with
 * ±20 % jitter so many tidewire instances do not return to a restarted cluster in lockstep.
 */

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

/** Delay before restart attempt `attempt` (0 for the first). */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(Math.min(options.maxMs, base * (0.8 + 0.4 * random())));
}

/** Reconnect delays: exponential from `initialMs` up to `maxMs`, with jitter so clients spread out. */

export interface BackoffOptions {
  /** First delay. Default 250 ms. */
  initialMs?: number;
  /** Largest delay. Default 10 000 ms. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 250, maxMs: 10_000 };

/**
 * The delay before reconnect attempt `attempt` (0 for the first): half the exponential step plus a
 * random half, so thousands of clients dropped at once by a restart do not return in lockstep.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialMs, maxMs } = { ...DEFAULT_BACKOFF, ...options };
  const step = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * (step / 2));
}

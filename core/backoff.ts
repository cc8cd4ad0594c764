/**
 * Retry delays, for every reconnect in tidewire: the Postgres replication stream, the Kafka
 * consumer's restarts, the client SDK's WebSocket. Exponential growth from `initialMs`, capped at
 * `maxMs`, with full jitter: each delay is uniform between 0 and that step, so many processes (or
 * thousands of browsers) dropped by the same restart spread out instead of returning in
 * lockstep, and the load they put on the restarted server is the lowest of the usual schemes
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 *
 * Imports nothing: the browser SDK and the server both use it.
 */

export interface BackoffOptions {
  /** The first step: the first delay is at most this. */
  readonly initialMs: number;
  /** The largest step: no delay exceeds it. */
  readonly maxMs: number;
}

/** A server process reconnecting to its database or broker: 500 ms doubling to 30 s. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

/** The ceiling of attempt `attempt` (0 for the first): `initialMs · 2^attempt`, at most `maxMs`. */
export function backoffStep(attempt: number, options: BackoffOptions): number {
  return Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
}

/**
 * The delay before attempt `attempt` (0 for the first): uniform in [0, step]. `random` returns
 * values in [0, 1), as Math.random does; tests inject their own.
 *
 * @example
 * backoffDelay(3, { initialMs: 500, maxMs: 30_000 }); // somewhere in 0..4000 ms
 */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  return Math.round(random() * backoffStep(attempt, options));
}

export interface BackoffPolicy extends BackoffOptions {
  /** A connection up this long counts as stable: the failure after it starts over from the first step. */
  readonly stableMs: number;
}

/**
 * Attempts and their delays for one reconnecting thing. A connection that fails soon after it
 * came up (a server that accepts and then closes at once) keeps backing off; one that held for
 * `stableMs` starts over from the first step.
 *
 * @example
 * const backoff = new Backoff({ initialMs: 250, maxMs: 10_000, stableMs: 5_000 });
 * socket.onopen = () => backoff.connected();
 * socket.onclose = () => setTimeout(reconnect, backoff.next());
 */
export class Backoff {
  private attempt = 0;
  private upSince: number | null = null;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {
    if (!(policy.initialMs >= 0) || !(policy.maxMs >= policy.initialMs) || !(policy.stableMs >= 0)) {
      throw new RangeError(`backoff: need 0 <= initialMs <= maxMs and stableMs >= 0, got ${JSON.stringify(policy)}`);
    }
  }

  /** Failed attempts since the last stable connection. */
  get attempts(): number {
    return this.attempt;
  }

  /** The connection is up (the clock for `stableMs` starts). */
  connected(): void {
    this.upSince = this.now();
  }

  /** It failed (or dropped): the delay before the next attempt. */
  next(): number {
    if (this.upSince !== null && this.now() - this.upSince >= this.policy.stableMs) this.attempt = 0;
    this.upSince = null;
    return backoffDelay(this.attempt++, this.policy, this.random);
  }

  /** Start over from the first step. */
  reset(): void {
    this.attempt = 0;
    this.upSince = null;
  }
}

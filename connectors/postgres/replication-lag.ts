/**
 * Reads the replication slot's position from Postgres every few seconds over one small connection
 * of its own (application_name tidewire-metrics), so the lag in bytes is what the server sees:
 * pg_current_wal_lsn() − confirmed_flush_lsn, WAL the slot still holds back. Scrapes read the last
 * sample; they never wait for the database.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import { clientConfig, closeClient, openClient } from './connection.ts';
import { describeTarget } from './errors.ts';
import { type SlotStatus, readSlots } from './slot-status.ts';

export interface ReplicationLagOptions {
  readonly url: string;
  readonly slot: string;
  /** Default 5000. */
  readonly intervalMs?: number;
  readonly logger: Logger;
}

export interface ReplicationLagSample {
  /** When it was read (ms since the epoch). */
  readonly at: number;
  /** Null when the slot does not exist (yet). */
  readonly slot: SlotStatus | null;
}

export class ReplicationLagPoller {
  /** The last successful read; null before the first. */
  last: ReplicationLagSample | null = null;
  /** Reads that failed (the connection is reopened at the next one). */
  failures = 0;
  private readonly intervalMs: number;
  private readonly log: Logger;
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private failing = false;

  constructor(private readonly options: ReplicationLagOptions) {
    this.intervalMs = options.intervalMs ?? 5_000;
    if (!(this.intervalMs >= 100)) throw new RangeError('ReplicationLagPoller: intervalMs must be at least 100');
    this.log = options.logger;
  }

  /** Reads now, then every intervalMs. */
  start(): void {
    this.stopped = false;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await closeClient(this.client);
    this.client = null;
  }

  private tick(): void {
    if (this.running || this.stopped) return; // a slow read is not stacked up
    this.running = this.poll().finally(() => (this.running = null));
  }

  private async poll(): Promise<void> {
    try {
      this.client ??= await openClient(
        { ...clientConfig(this.options.url, 'query'), application_name: 'tidewire-metrics' },
        describeTarget(this.options.url),
        this.log,
      );
      if (this.stopped) return;
      const [slot] = await readSlots(this.client, this.options.slot);
      this.last = { at: Date.now(), slot: slot ?? null };
      if (this.failing) this.log.info({ slot: this.options.slot }, 'reading the replication lag works again');
      this.failing = false;
    } catch (err) {
      this.failures++;
      // Once per outage: the connector reports the outage itself.
      if (!this.failing) this.log.warn({ err, slot: this.options.slot }, 'reading the replication lag failed; retrying every interval');
      this.failing = true;
      const broken = this.client;
      this.client = null;
      await closeClient(broken);
    }
  }
}

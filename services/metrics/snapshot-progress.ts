/**
 * Initial-snapshot progress as operators read it: rows per second over the last few seconds, the
 * share of the table's estimated rows done, and the time left. Fed by the Postgres connector's
 * onSnapshotProgress (after each applied batch); the log record and the CLI's progress bar both
 * read the report it makes.
 */
import type { Logger } from 'pino';
import type { SnapshotProgress } from '../../connectors/postgres/index.ts';

export interface SnapshotProgressReport {
  readonly table: string;
  readonly rows: number;
  /** The table's estimated rows (pg_class.reltuples); null when never analyzed. */
  readonly total: number | null;
  /** 0-100; null without an estimate. Capped at 100: the estimate can be low. */
  readonly percent: number | null;
  readonly rowsPerSecond: number;
  /** Null without an estimate, or when past it. */
  readonly etaSeconds: number | null;
  /** Since this table's snapshot began. */
  readonly elapsedMs: number;
}

/** Rate over this window: long enough to smooth batch jitter, short enough to follow a slowdown. */
const WINDOW_MS = 5_000;

/** Tables are read one after another; the next one starts when the previous one's last batch lands. */
export class SnapshotRate {
  private table: string | null = null;
  private startedAt: number;
  private lastAt: number;
  private samples: Array<{ at: number; rows: number }> = [];

  constructor(now = Date.now()) {
    this.startedAt = now;
    this.lastAt = now;
  }

  update(p: SnapshotProgress, now = Date.now()): SnapshotProgressReport {
    if (p.table !== this.table) {
      this.table = p.table;
      this.startedAt = this.lastAt;
      this.samples = [];
    }
    this.lastAt = now;
    this.samples.push({ at: now, rows: p.rows });
    while (this.samples.length > 2 && now - this.samples[1].at >= WINDOW_MS) this.samples.shift();
    // From the table's start until a second batch lands (that start includes setting up the slot
    // and the cursor); then over the batches of the last few seconds only.
    const first = this.samples.length > 1 ? this.samples[0] : { at: this.startedAt, rows: 0 };
    const seconds = (now - first.at) / 1000;
    const rowsPerSecond = seconds > 0 ? Math.round((p.rows - first.rows) / seconds) : 0;
    const total = p.totalEstimate > 0 ? Math.round(p.totalEstimate) : null;
    const left = total === null ? 0 : total - p.rows;
    return {
      table: p.table,
      rows: p.rows,
      total,
      percent: total === null ? null : Math.min(100, Math.floor((p.rows * 100) / total)),
      rowsPerSecond,
      etaSeconds: total !== null && left > 0 && rowsPerSecond > 0 ? Math.ceil(left / rowsPerSecond) : null,
      elapsedMs: now - this.startedAt,
    };
  }
}

/**
 * Logs `snapshot progress` (table, rows, total, rowsPerSecond, etaSeconds) at most every
 * `intervalMs`, and returns every report for whoever draws it live.
 */
export class SnapshotProgressLog {
  private readonly rate: SnapshotRate;
  private loggedAt: number;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 5_000,
    now = Date.now(),
  ) {
    this.rate = new SnapshotRate(now);
    this.loggedAt = now;
  }

  report(p: SnapshotProgress, now = Date.now()): SnapshotProgressReport {
    const r = this.rate.update(p, now);
    if (now - this.loggedAt >= this.intervalMs) {
      this.loggedAt = now;
      this.log.info({ table: r.table, rows: r.rows, total: r.total, percent: r.percent, rowsPerSecond: r.rowsPerSecond, etaSeconds: r.etaSeconds }, 'snapshot progress');
    }
    return r;
  }
}

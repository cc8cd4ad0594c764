/**
 * The initial snapshot as one updating terminal line (stderr, TTY only):
 *   snapshot public.orders ▕█████░░░░░░░▏  42% 1.2M/2.9M rows 180k rows/s ETA 0:09
 * A finished table keeps its line; the next table starts a new one.
 */
import type { SnapshotProgressReport } from '../metrics/index.ts';
import { formatCount, formatDuration } from './format.ts';

const BAR_WIDTH = 12;
/** Redraws at most this often; a new table is drawn at once. */
const REDRAW_MS = 100;

export function renderProgress(r: SnapshotProgressReport): string {
  const rate = `${formatCount(r.rowsPerSecond)} rows/s`;
  if (r.total === null || r.percent === null) return `snapshot ${r.table} ${formatCount(r.rows)} rows ${rate}`;
  const filled = Math.round((r.percent / 100) * BAR_WIDTH);
  const bar = `▕${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}▏`;
  const eta = r.etaSeconds === null ? '' : ` ETA ${formatDuration(r.etaSeconds)}`;
  return `snapshot ${r.table} ${bar} ${String(r.percent).padStart(3)}% ${formatCount(r.rows)}/${formatCount(r.total)} rows ${rate}${eta}`;
}

/** What a table's line says once it is done. */
export function renderDone(r: SnapshotProgressReport): string {
  const bar = `▕${'█'.repeat(BAR_WIDTH)}▏`;
  const seconds = r.elapsedMs / 1000;
  const rate = seconds > 0 ? ` (${formatCount(r.rows / seconds)} rows/s)` : '';
  return `snapshot ${r.table} ${bar} 100% ${formatCount(r.rows)} rows in ${formatDuration(seconds)}${rate}`;
}

export class ProgressBar {
  private current: SnapshotProgressReport | null = null;
  private drawnAt = 0;

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {}

  update(r: SnapshotProgressReport, now = Date.now()): void {
    if (this.current && this.current.table !== r.table) {
      this.draw(renderDone(this.current));
      this.out.write('\n');
    } else if (this.current && now - this.drawnAt < REDRAW_MS) {
      this.current = r;
      return;
    }
    this.current = r;
    this.drawnAt = now;
    this.draw(renderProgress(r));
  }

  /** The snapshot is over: the last table's line is completed. */
  finish(): void {
    if (!this.current) return;
    this.draw(renderDone(this.current));
    this.out.write('\n');
    this.current = null;
  }

  /**
   * Writes other output to the same terminal (a log line) without tearing the bar: the bar is
   * cleared, `write` runs, the bar is drawn again below it.
   */
  around(write: () => void): void {
    if (!this.current) return write();
    this.out.write('\r\x1b[K');
    write();
    this.draw(renderProgress(this.current));
  }

  /** The snapshot was cut short: the line stays as it was, and output continues below it. */
  abandon(): void {
    if (this.current) this.out.write('\n');
    this.current = null;
  }

  private draw(line: string): void {
    const width = this.out.columns ?? 120;
    // \r and "erase to end of line": the line is rewritten in place, never wrapped.
    this.out.write(`\r${line.length >= width ? line.slice(0, width - 1) : line}\x1b[K`);
  }
}

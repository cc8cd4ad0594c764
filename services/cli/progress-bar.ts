/**
 * The initial snapshot as one updating terminal line (stderr, TTY only), never wider than the
 * terminal (80 columns when it does not say):
 *   snapshot public.orders ▕█████░░░░░░░▏  42% 1.2M/2.9M rows 180k rows/s ETA 0:09
 * A finished table keeps its line; the next table starts a new one.
 */
import type { SnapshotProgressReport } from '../metrics/index.ts';
import { formatCount, formatDuration } from './format.ts';

const BAR_WIDTH = 12;
/** Redraws at most this often; a new table is drawn at once. */
const REDRAW_MS = 100;
/** The width assumed when the terminal does not say (and the classic one). */
export const DEFAULT_COLUMNS = 80;
/** A table name is never cut shorter than this. */
const MIN_TABLE = 20;

/**
 * The line for `r`, at most `columns - 1` characters (the last column is left free: writing
 * there makes some terminals wrap). A long table name is shortened in the middle
 * (`public.order…_2024`), but not below MIN_TABLE characters: first the rate goes, then the row
 * counts.
 */
export function renderProgress(r: SnapshotProgressReport, columns = DEFAULT_COLUMNS): string {
  const rate = ` ${formatCount(r.rowsPerSecond)} rows/s`;
  if (r.total === null || r.percent === null) return fit(columns, r.table, [` ${formatCount(r.rows)} rows`, rate]);
  const filled = Math.round((r.percent / 100) * BAR_WIDTH);
  const bar = ` ▕${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}▏ ${String(r.percent).padStart(3)}%`;
  const eta = r.etaSeconds === null ? '' : ` ETA ${formatDuration(r.etaSeconds)}`;
  return fit(columns, r.table, [bar, ` ${formatCount(r.rows)}/${formatCount(r.total)} rows`, rate, eta], [2, 1]);
}

/** What a table's line says once it is done. */
export function renderDone(r: SnapshotProgressReport, columns = DEFAULT_COLUMNS): string {
  const bar = ` ▕${'█'.repeat(BAR_WIDTH)}▏ 100%`;
  const seconds = r.elapsedMs / 1000;
  const rate = seconds > 0 ? ` (${formatCount(r.rows / seconds)} rows/s)` : '';
  return fit(columns, r.table, [bar, ` ${formatCount(r.rows)} rows in ${formatDuration(seconds)}`, rate], [2]);
}

/**
 * `snapshot <table><parts>` in `columns - 1` characters: the table shortened first, then the parts
 * at the indexes of `droppable` left out, in that order.
 */
function fit(columns: number, table: string, parts: string[], droppable: number[] = [1]): string {
  const room = Math.max(20, columns - 1);
  const kept = [...parts];
  for (let i = 0; ; i++) {
    const rest = kept.join('');
    const forTable = room - 'snapshot '.length - rest.length;
    if (table.length <= forTable) return `snapshot ${table}${rest}`;
    if (forTable >= MIN_TABLE || i >= droppable.length) return `snapshot ${shorten(table, Math.max(MIN_TABLE, forTable))}${rest}`.slice(0, room);
    kept[droppable[i]] = '';
  }
}

/** `public.order_line_items_2024` → `public.orde…ms_2024`: both ends kept, as they tell tables apart. */
function shorten(name: string, max: number): string {
  if (name.length <= max) return name;
  const head = Math.ceil((max - 1) / 2);
  return `${name.slice(0, head)}…${name.slice(name.length - (max - 1 - head))}`;
}

export class ProgressBar {
  private current: SnapshotProgressReport | null = null;
  private drawnAt = 0;

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {}

  update(r: SnapshotProgressReport, now = Date.now()): void {
    if (this.current && this.current.table !== r.table) {
      this.draw(renderDone(this.current, this.columns));
      this.out.write('\n');
    } else if (this.current && now - this.drawnAt < REDRAW_MS) {
      this.current = r;
      return;
    }
    this.current = r;
    this.drawnAt = now;
    this.draw(renderProgress(r, this.columns));
  }

  /** The snapshot is over: the last table's line is completed. */
  finish(): void {
    if (!this.current) return;
    this.draw(renderDone(this.current, this.columns));
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
    this.draw(renderProgress(this.current, this.columns));
  }

  /** The snapshot was cut short: the line stays as it was, and output continues below it. */
  abandon(): void {
    if (this.current) this.out.write('\n');
    this.current = null;
  }

  private draw(line: string): void {
    // \r and "erase to end of line": the line is rewritten in place, never wrapped.
    this.out.write(`\r${line}\x1b[K`);
  }

  private get columns(): number {
    return this.out.columns || DEFAULT_COLUMNS;
  }
}

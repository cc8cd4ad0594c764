/**
 * The live table: one row per topic, sorted by path (numbers in paths compare as numbers), one
 * column per value field in the order fields were first seen. Changes are queued and drawn once
 * per animation frame, so a burst of updates to a topic costs one DOM update, and a cell whose
 * value differs from what is on screen gets the class `changed` for HIGHLIGHT_MS.
 *
 * Only the first `maxRows` rows are in the DOM (a selector can match far more topics than a page
 * can show); the rest are kept in the model and move in as rows above them disappear.
 */
import { formatCell, formatCount } from './format.ts';

export const HIGHLIGHT_MS = 1000;

export interface TopicTableOptions {
  /** Most rows in the DOM. Default 1000. */
  maxRows?: number;
  /** Called after each drawn frame with the number of topics held. */
  onDrawn?: (topics: number) => void;
}

interface Row {
  path: string;
  value: Record<string, unknown>;
  tr: HTMLTableRowElement | null;
}

const collator = new Intl.Collator('en', { numeric: true });

export class TopicTable {
  private readonly maxRows: number;
  private readonly rows = new Map<string, Row>();
  /** All paths, sorted. */
  private readonly order: string[] = [];
  private readonly columns: string[] = [];
  private readonly columnSet = new Set<string>();
  /** Latest value per path since the last frame; null = removed. */
  private readonly pending = new Map<string, Record<string, unknown> | null>();
  private readonly timers = new WeakMap<HTMLTableCellElement, ReturnType<typeof setTimeout>>();
  private frame: number | null = null;

  constructor(
    private readonly table: HTMLTableElement,
    private readonly note: HTMLElement,
    private readonly options: TopicTableOptions = {},
  ) {
    this.maxRows = options.maxRows ?? 1000;
    this.reset();
  }

  get size(): number {
    return this.rows.size;
  }

  set(path: string, value: Record<string, unknown>): void {
    this.pending.set(path, value);
    this.schedule();
  }

  remove(path: string): void {
    this.pending.set(path, null);
    this.schedule();
  }

  /** Empties the table and its columns (a new selector). */
  reset(): void {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.pending.clear();
    this.rows.clear();
    this.order.length = 0;
    this.columns.length = 0;
    this.columnSet.clear();
    const thead = this.table.tHead ?? this.table.createTHead();
    thead.replaceChildren(document.createElement('tr'));
    thead.rows[0].append(headerCell('Topic', 'path'));
    const tbody = this.table.tBodies[0] ?? this.table.createTBody();
    tbody.replaceChildren();
    this.updateNote();
  }

  private schedule(): void {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.draw());
  }

  private draw(): void {
    this.frame = null;
    for (const [path, value] of this.pending) {
      if (value === null) this.drop(path);
      else this.put(path, value);
    }
    this.pending.clear();
    this.updateNote();
    this.options.onDrawn?.(this.rows.size);
  }

  private put(path: string, value: Record<string, unknown>): void {
    this.addColumns(value);
    const row = this.rows.get(path);
    if (!row) {
      const fresh: Row = { path, value, tr: null };
      this.rows.set(path, fresh);
      const at = this.insertionPoint(path);
      this.order.splice(at, 0, path);
      if (at < this.maxRows) this.attach(fresh, at, true);
      return;
    }
    const before = row.value;
    row.value = value;
    if (!row.tr) return;
    const cells = row.tr.cells;
    for (let i = 0; i < this.columns.length; i++) {
      const field = this.columns[i];
      if (sameJson(before[field], value[field])) continue;
      const td = cells[i + 1] as HTMLTableCellElement;
      fillCell(td, value[field], Object.hasOwn(value, field));
      this.highlight(td);
    }
  }

  private drop(path: string): void {
    const row = this.rows.get(path);
    if (!row) return;
    this.rows.delete(path);
    const at = this.indexOf(path);
    this.order.splice(at, 1);
    if (!row.tr) return;
    row.tr.remove();
    // A row that was below the visible limit moves up into view.
    if (this.order.length >= this.maxRows) {
      const next = this.rows.get(this.order[this.maxRows - 1])!;
      if (!next.tr) this.attach(next, this.maxRows - 1, false);
    }
  }

  private attach(row: Row, at: number, added: boolean): void {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'topic-row';
    tr.dataset.path = row.path;
    const th = document.createElement('th');
    th.scope = 'row';
    th.className = 'path';
    th.textContent = row.path;
    tr.append(th);
    for (const field of this.columns) {
      const td = document.createElement('td');
      td.dataset.field = field;
      fillCell(td, row.value[field], Object.hasOwn(row.value, field));
      tr.append(td);
    }
    if (added) tr.classList.add('added');
    row.tr = tr;
    const tbody = this.table.tBodies[0];
    tbody.insertBefore(tr, tbody.rows[at] ?? null);
    if (tbody.rows.length > this.maxRows) {
      const last = tbody.rows[tbody.rows.length - 1];
      this.rows.get(last.dataset.path!)!.tr = null;
      last.remove();
    }
  }

  private addColumns(value: Record<string, unknown>): void {
    for (const field in value) {
      if (this.columnSet.has(field)) continue;
      this.columnSet.add(field);
      this.columns.push(field);
      const th = headerCell(field, field);
      if (typeof value[field] === 'number') th.classList.add('num');
      this.table.tHead!.rows[0].append(th);
      for (const row of this.rows.values()) {
        if (!row.tr) continue;
        const td = document.createElement('td');
        td.dataset.field = field;
        fillCell(td, row.value[field], Object.hasOwn(row.value, field));
        row.tr.append(td);
      }
    }
  }

  private highlight(td: HTMLTableCellElement): void {
    const timer = this.timers.get(td);
    if (timer !== undefined) {
      clearTimeout(timer);
      // Restart the fade: removing the class and reading layout lets the animation run again.
      td.classList.remove('changed');
      void td.offsetWidth;
    }
    td.classList.add('changed');
    this.timers.set(
      td,
      setTimeout(() => {
        td.classList.remove('changed');
        this.timers.delete(td);
      }, HIGHLIGHT_MS),
    );
  }

  private insertionPoint(path: string): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(this.order[mid], path) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexOf(path: string): number {
    const at = this.insertionPoint(path);
    return this.order[at] === path ? at : this.order.indexOf(path);
  }

  private updateNote(): void {
    const n = this.rows.size;
    this.note.textContent =
      n === 0 ? 'No topics match this selector yet.' : n > this.maxRows ? `Showing the first ${formatCount(this.maxRows)} of ${formatCount(n)} topics.` : '';
    this.note.hidden = this.note.textContent === '';
  }
}

function compare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

function headerCell(text: string, field: string): HTMLTableCellElement {
  const th = document.createElement('th');
  th.scope = 'col';
  th.textContent = text;
  th.dataset.field = field;
  return th;
}

function fillCell(td: HTMLTableCellElement, v: unknown, present: boolean): void {
  td.className = '';
  if (!present) {
    td.textContent = '';
    td.classList.add('absent');
  } else if (v === null) {
    td.textContent = 'null';
    td.classList.add('null');
  } else {
    td.textContent = formatCell(v);
    if (typeof v === 'number') td.classList.add('num');
    else if (typeof v === 'boolean') td.classList.add('bool');
    else if (typeof v === 'object') td.classList.add('json');
  }
  td.title = present && typeof v === 'object' && v !== null ? JSON.stringify(v, null, 2) : '';
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

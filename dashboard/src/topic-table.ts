/**
 * The live table: one row per topic, sorted by path (numbers in paths compare as numbers), one
 * column per value field in the order fields were first seen. Changes are queued and drawn once
 * per animation frame, so a burst of updates to a topic costs one DOM update, and a cell whose
 * value differs from what is on screen gets the class `changed` for HIGHLIGHT_MS.
 *
 * The table is virtualised: every topic is held in the model (and counted), but only the rows in
 * view of the scrolling container (plus a few either side) are in the DOM, between two spacer
 * rows that stand for the rest, so 200,000 topics scroll as smoothly as 20. New paths are merged
 * into the sorted order once per frame (sorted among themselves, placed by binary search, one
 * pass to merge), so a large subscription arriving in pages costs O(held + page) per frame, not a
 * splice per topic.
 */
import { formatCell, formatCount } from './format.ts';

export const HIGHLIGHT_MS = 1000;

export interface TopicTableOptions {
  /** Rows drawn beyond each edge of the view, so a scroll shows rows already there. Default 10. */
  overscan?: number;
  /** Called after each drawn frame with the number of topics held. */
  onDrawn?: (topics: number) => void;
}

interface Row {
  path: string;
  value: Record<string, unknown>;
}

const collator = new Intl.Collator('en', { numeric: true });
/** The height of a row until one has been measured (CSS: tbody rows are one line). */
const DEFAULT_ROW_PX = 33;

export class TopicTable {
  private readonly overscan: number;
  private readonly rows = new Map<string, Row>();
  /** All paths, sorted. */
  private order: string[] = [];
  private readonly columns: string[] = [];
  private readonly columnSet = new Set<string>();
  /** Latest value per path since the last frame; null = removed. */
  private readonly pending = new Map<string, Record<string, unknown> | null>();
  /** The rows in the DOM, by path. */
  private readonly drawn = new Map<string, HTMLTableRowElement>();
  private readonly timers = new WeakMap<HTMLTableCellElement, ReturnType<typeof setTimeout>>();
  private readonly top: HTMLTableRowElement;
  private readonly bottom: HTMLTableRowElement;
  private readonly scroller: HTMLElement;
  private rowPx = 0;
  private frame: number | null = null;

  constructor(
    private readonly table: HTMLTableElement,
    private readonly note: HTMLElement,
    private readonly options: TopicTableOptions = {},
  ) {
    this.overscan = options.overscan ?? 10;
    this.top = spacer();
    this.bottom = spacer();
    this.scroller = table.parentElement ?? table;
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    addEventListener('resize', () => this.schedule());
    this.reset();
  }

  get size(): number {
    return this.rows.size;
  }

  /** Every topic held, in the table's order, as of the last drawn frame. */
  entries(): Array<[string, Record<string, unknown>]> {
    return this.order.map((p) => [p, this.rows.get(p)!.value]);
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
    this.order = [];
    this.drawn.clear();
    this.columns.length = 0;
    this.columnSet.clear();
    const thead = this.table.tHead ?? this.table.createTHead();
    thead.replaceChildren(document.createElement('tr'));
    thead.rows[0].append(headerCell('Topic', 'path'));
    const tbody = this.table.tBodies[0] ?? this.table.createTBody();
    setSpacer(this.top, 0, 1);
    setSpacer(this.bottom, 0, 1);
    tbody.replaceChildren(this.top, this.bottom);
    this.scroller.scrollTop = 0;
    this.updateNote();
  }

  private schedule(): void {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.draw());
  }

  private draw(): void {
    this.frame = null;
    const added: string[] = [];
    const fresh = new Set<string>();
    let removed = false;
    for (const [path, value] of this.pending) {
      const row = this.rows.get(path);
      if (value === null) {
        if (!row) continue;
        this.rows.delete(path);
        removed = true;
        continue;
      }
      this.addColumns(value);
      if (!row) {
        this.rows.set(path, { path, value });
        added.push(path);
        fresh.add(path);
      } else {
        const before = row.value;
        row.value = value;
        const tr = this.drawn.get(path);
        if (tr) this.updateCells(tr, before, value);
      }
    }
    this.pending.clear();
    // One entry per path and frame: a path added here is not in the order, one removed here is.
    if (removed) this.order = this.order.filter((p) => this.rows.has(p));
    if (added.length > 0) this.order = merge(this.order, added);
    this.render(fresh);
    this.updateNote();
    this.options.onDrawn?.(this.rows.size);
  }

  /** Puts the rows in view (and `overscan` either side) in the DOM, and only those. */
  private render(fresh: Set<string>): void {
    const n = this.order.length;
    const rowPx = this.rowPx || DEFAULT_ROW_PX;
    const headPx = this.table.tHead?.offsetHeight ?? 0;
    const viewTop = Math.max(0, this.scroller.scrollTop - headPx);
    const viewRows = Math.ceil((this.scroller.clientHeight || innerHeight) / rowPx) + 1;
    const start = Math.min(n, Math.max(0, Math.floor(viewTop / rowPx) - this.overscan));
    const end = Math.min(n, start + viewRows + 2 * this.overscan);
    const want: HTMLTableRowElement[] = [];
    const keep = new Set<string>();
    for (let i = start; i < end; i++) {
      const path = this.order[i];
      keep.add(path);
      let tr = this.drawn.get(path);
      if (!tr) {
        tr = this.rowElement(this.rows.get(path)!, fresh.has(path));
        this.drawn.set(path, tr);
      }
      want.push(tr);
    }
    for (const [path, tr] of this.drawn) {
      if (keep.has(path)) continue;
      tr.remove();
      this.drawn.delete(path);
    }
    setSpacer(this.top, start * rowPx, this.columns.length + 1);
    setSpacer(this.bottom, (n - end) * rowPx, this.columns.length + 1);
    // Move rows only when their sequence changed: a moved row would restart its highlight.
    const tbody = this.table.tBodies[0];
    const children = tbody.children;
    let same = children.length === want.length + 2;
    for (let i = 0; same && i < want.length; i++) same = children[i + 1] === want[i];
    if (!same) tbody.replaceChildren(this.top, ...want, this.bottom);
    if (!this.rowPx && want.length > 0) this.rowPx = want[0].getBoundingClientRect().height || DEFAULT_ROW_PX;
  }

  private rowElement(row: Row, added: boolean): HTMLTableRowElement {
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
    return tr;
  }

  private updateCells(tr: HTMLTableRowElement, before: Record<string, unknown>, value: Record<string, unknown>): void {
    const cells = tr.cells;
    for (let i = 0; i < this.columns.length; i++) {
      const field = this.columns[i];
      if (sameJson(before[field], value[field]) && Object.hasOwn(before, field) === Object.hasOwn(value, field)) continue;
      const td = cells[i + 1] as HTMLTableCellElement;
      fillCell(td, value[field], Object.hasOwn(value, field));
      this.highlight(td);
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
      for (const [path, tr] of this.drawn) {
        const row = this.rows.get(path);
        const td = document.createElement('td');
        td.dataset.field = field;
        fillCell(td, row?.value[field], row !== undefined && Object.hasOwn(row.value, field));
        tr.append(td);
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

  private updateNote(): void {
    const n = this.rows.size;
    this.note.textContent = n === 0 ? 'No topics match this selector yet.' : `${formatCount(n)} ${n === 1 ? 'topic' : 'topics'}`;
    this.note.hidden = this.note.textContent === '';
  }
}

function compare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** The first index of `sorted` whose path is not before `path`. */
function lowerBound(sorted: readonly string[], path: string, lo = 0): number {
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(sorted[mid], path) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `sorted` with `added` (paths not in it) merged in: O(sorted + added · log sorted) compares. */
function merge(sorted: string[], added: string[]): string[] {
  added.sort(compare);
  if (sorted.length === 0) return added;
  // Pages usually arrive in order: all of them after what is held is one concat.
  if (compare(sorted[sorted.length - 1], added[0]) < 0) return sorted.concat(added);
  const out: string[] = new Array(sorted.length + added.length);
  let from = 0;
  let o = 0;
  for (const path of added) {
    const at = lowerBound(sorted, path, from);
    while (from < at) out[o++] = sorted[from++];
    out[o++] = path;
  }
  while (from < sorted.length) out[o++] = sorted[from++];
  return out;
}

function spacer(): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.className = 'spacer';
  tr.setAttribute('aria-hidden', 'true');
  tr.append(document.createElement('td'));
  return tr;
}

function setSpacer(tr: HTMLTableRowElement, px: number, columns: number): void {
  const td = tr.cells[0];
  td.colSpan = columns;
  td.style.height = `${px}px`;
  tr.hidden = px === 0;
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

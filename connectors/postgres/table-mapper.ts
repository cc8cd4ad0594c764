/**
 * Maps rows of one configured table onto topic updates: the path from the template, the value
 * from the columns left after include/exclude. Snapshot rows and pgoutput tuples are both raw
 * text keyed by column name, so both take exactly this path.
 */
import type { Logger } from 'pino';
import type { RowIndex, RowWrite, SourceCheckpoints } from '../../core/ingest.ts';
import { HeapRowIndex } from '../../core/heap-row-index.ts';
import type { JsonObject, JsonValue } from '../../core/json.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import { parseTableName, qualifiedName } from './catalog.ts';
import { PostgresConnectorError } from './errors.ts';
import { type Converter, asText } from './pgoutput-values.ts';
import type { TableSpec } from './preflight.ts';
import type { TypeRegistry } from './type-registry.ts';

/**
 * A row as text: `null` is SQL NULL; `undefined` (or absent) is a value the source did not send,
 * i.e. pgoutput's unchanged-TOAST marker, or a non-key column of a key-only tuple.
 */
export type RawTuple = Readonly<Record<string, string | null | undefined>>;

export interface ColumnType {
  readonly name: string;
  readonly typeOid: number;
}

interface MappedColumn {
  readonly name: string;
  readonly convert: Converter;
  readonly inValue: boolean;
  /** Needed to build the path or to identify the row. */
  readonly inPath: boolean;
}

/**
 * The `TopicUpdate.source` of every topic a table produces: `postgres:<schema>.<table>`.
 * @example postgresSourceName('orders') === 'postgres:public.orders'
 */
export function postgresSourceName(table: string): string {
  return `postgres:${qualifiedName(parseTableName(table))}`;
}

/**
 * The columns of `spec`'s table that its mapping reads: those in the value (include/exclude) and
 * those the path and the row's key need, generated ones never. What the snapshot selects and,
 * on Postgres 15+, the publication's column list.
 */
export function mappedColumnNames(spec: TableSpec): string[] {
  const include = spec.mapping.include ? new Set(spec.mapping.include) : null;
  const exclude = new Set(spec.mapping.exclude ?? []);
  const path = new Set([...spec.template.fields, ...spec.keyColumns]);
  return spec.table.columns.filter((c) => !c.generated && (path.has(c.name) || ((include === null || include.has(c.name)) && !exclude.has(c.name)))).map((c) => c.name);
}

/** Rows restored into the row index between two turns of the event loop. */
const RESTORE_YIELD_EVERY = 10_000;

export class TableMapper {
  readonly source: string;
  readonly name: string;
  private columns: MappedColumn[] = [];
  private pathColumns: MappedColumn[] = [];
  private valueIsRow = true;
  private readonly include: ReadonlySet<string> | null;
  private readonly exclude: ReadonlySet<string>;
  private readonly pathFields: ReadonlySet<string>;
  /**
   * Row key → current path (core/ingest.ts, RowIndex), kept only when the path uses columns
   * outside the key: an UPDATE or DELETE then names the row by key alone, and this is the only
   * way to find its old topic. With durable state it is stored with the state (a restart that
   * resumes finds it there); in memory, a map rebuilt by the snapshot of every start.
   */
  readonly rowIndex: RowIndex | null;
  /** Row index writes made since the last `takeRowWrites`: they go to the sink with the updates. */
  private rowWrites: RowWrite[] = [];

  constructor(
    readonly spec: TableSpec,
    private readonly types: TypeRegistry,
    private readonly log: Logger,
    /** The durable state, whose row index this table uses; absent: a row index in memory. */
    checkpoints?: SourceCheckpoints | null,
  ) {
    this.source = postgresSourceName(spec.mapping.table);
    this.name = qualifiedName(spec.table);
    this.include = spec.mapping.include ? new Set(spec.mapping.include) : null;
    this.exclude = new Set(spec.mapping.exclude ?? []);
    this.pathFields = new Set([...spec.template.fields, ...spec.keyColumns]);
    const keySet = new Set(spec.keyColumns);
    const needsIndex = spec.table.replicaIdentity !== 'full' && spec.template.fields.some((f) => !keySet.has(f));
    this.rowIndex = needsIndex ? (checkpoints?.rowIndex(this.source) ?? new HeapRowIndex()) : null;
    this.setColumns(spec.table.columns.filter((c) => !c.generated));
  }

  /** Column names the snapshot selects, in order. */
  get selectedColumns(): string[] {
    return this.columns.map((c) => c.name);
  }

  /**
   * Sets the table's columns (from the catalog, or from a Relation message after ALTER TABLE).
   * Every type must already be resolved in the registry; unknown ones read as text.
   */
  setColumns(columns: readonly ColumnType[]): void {
    const names = new Set(columns.map((c) => c.name));
    for (const f of this.pathFields) {
      if (!names.has(f)) {
        throw new PostgresConnectorError(
          'PG_SCHEMA_CHANGED',
          `column "${f}" of ${this.name} is gone, but postgres.tables.${this.spec.index}.path or its key needs it: fix the path and restart tidewire`,
        );
      }
    }
    const all: MappedColumn[] = [];
    for (const c of columns) {
      const inValue = (this.include === null || this.include.has(c.name)) && !this.exclude.has(c.name);
      const inPath = this.pathFields.has(c.name);
      if (inValue || inPath) all.push({ name: c.name, convert: this.types.converter(c.typeOid) ?? asText, inValue, inPath });
    }
    this.columns = all;
    this.pathColumns = all.filter((c) => c.inPath);
    this.valueIsRow = this.pathColumns.every((c) => c.inValue);
  }

  /** An INSERT. */
  insert(raw: RawTuple, out: TopicUpdate[]): void {
    this.update(raw, null, out);
  }

  /**
   * A read of the whole table (a snapshot) starts: its row index starts over, and is complete once
   * the read is applied (`readApplied`).
   */
  startRead(): void {
    this.rowWrites = [];
    this.rowIndex?.clear(false);
  }

  /** A row of the read begun by `startRead`: its key is new to the index, nothing to look up. */
  snapshotRow(raw: RawTuple, out: TopicUpdate[]): void {
    this.update(raw, null, out, true);
  }

  /** The read begun by `startRead` is applied (and diffed): the row index is complete. */
  readApplied(): void {
    if (this.rowIndex !== null && !this.rowIndex.complete) this.rowIndex.completed();
  }

  /** The row index writes made since the last call, to hand to the sink with their updates. */
  takeRowWrites(): RowWrite[] | undefined {
    if (this.rowWrites.length === 0) return undefined;
    const w = this.rowWrites;
    this.rowWrites = [];
    return w;
  }

  /**
   * An UPDATE. `old` is the old key (sent when the key changed) or the old row (REPLICA
   * IDENTITY FULL); null when neither was sent.
   */
  update(raw: RawTuple, old: RawTuple | null, out: TopicUpdate[], fresh = false): void {
    const value: JsonObject = {};
    const row: Record<string, JsonValue | undefined> = this.valueIsRow ? value : {};
    let unchanged: string[] | undefined;
    for (const c of this.columns) {
      const text = raw[c.name];
      if (text === undefined) {
        if (c.inValue) (unchanged ??= []).push(c.name);
        continue;
      }
      const v = text === null ? null : c.convert(text);
      if (c.inValue) value[c.name] = v;
      if (!this.valueIsRow && c.inPath) row[c.name] = v;
    }
    let path = this.render(row);
    let previous: string | undefined;
    if (this.rowIndex) {
      const key = this.keyOf(row);
      const oldKey = old ? this.keyOf(this.keyRow(old)) : key;
      previous = fresh ? undefined : this.rowIndex.get(oldKey);
      path ??= previous; // an unchanged TOASTed path column: the row kept its path
      if (oldKey !== key) this.writeRow(oldKey, null);
      if (path !== undefined && (path !== previous || oldKey !== key)) this.writeRow(key, path);
    } else if (old) {
      previous = this.render(this.keyRow(old));
    }
    if (path === undefined) return this.unmappable('update', row);
    if (previous !== undefined && previous !== path) out.push({ path: previous, source: this.source, value: null });
    const update: TopicUpdate = unchanged ? { path, source: this.source, value, keep: unchanged } : { path, source: this.source, value };
    const tenant = this.tenantOf(row);
    if (tenant === null) {
      // A row without a tenant belongs to nobody: never let it fall into the default tenant.
      this.log.warn({ table: this.name, path }, 'row skipped: its tenant column is NULL');
      out.push({ path, source: this.source, value: null });
      return;
    }
    if (tenant !== undefined) update.tenant = tenant;
    out.push(update);
  }

  /** The row's tenant: fixed by the mapping, or its tenant column (a path placeholder); null when that column is NULL. */
  private tenantOf(row: Record<string, JsonValue | undefined>): string | null | undefined {
    const { tenant, tenantColumn } = this.spec.mapping;
    if (tenantColumn === undefined) return tenant;
    const v = row[tenantColumn];
    return v === null || v === undefined ? null : String(v);
  }

  /** A DELETE: `old` is the key (or the whole old row with REPLICA IDENTITY FULL). */
  delete(old: RawTuple, out: TopicUpdate[]): void {
    const row = this.keyRow(old);
    let path: string | undefined;
    if (this.rowIndex) {
      const key = this.keyOf(row);
      path = this.rowIndex.get(key);
      if (path !== undefined) this.writeRow(key, null);
    }
    path ??= this.render(row);
    if (path === undefined) return this.unmappable('delete', row);
    out.push({ path, source: this.source, value: null });
  }

  /**
   * Rebuilds the stored row index from the topics this table produced (read back from durable
   * state), when every key column is in the value: a store written before row indexes were kept.
   * `flush` stores a part of the writes (every 10,000 rows). Returns false when a key column is not
   * in the value: the table must then be read again to rebuild it.
   */
  async restoreIndex(
    topics: Iterable<{ readonly path: string; readonly value: JsonObject }>,
    flush: (rows: readonly RowWrite[]) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const index = this.rowIndex;
    if (!index) return true;
    const keys = this.spec.keyColumns;
    if (keys.some((k) => this.exclude.has(k) || (this.include !== null && !this.include.has(k)))) return false;
    this.startRead();
    let n = 0;
    for (const t of topics) {
      this.writeRow(JSON.stringify(keys.map((k) => t.value[k] ?? null)), t.path);
      // Millions of rows take seconds: let the node answer /health, handshakes and resumes meanwhile.
      if (++n % RESTORE_YIELD_EVERY === 0) {
        await flush(this.takeRowWrites() ?? []);
        await new Promise((resolve) => setImmediate(resolve));
        signal?.throwIfAborted();
      }
    }
    await flush(this.takeRowWrites() ?? []);
    this.readApplied();
    return true;
  }

  /** A TRUNCATE: the caller removes the topics; forget the keys. */
  truncate(): void {
    this.rowWrites = [];
    this.rowIndex?.clear(true);
  }

  private writeRow(key: string, path: string | null): void {
    const w = this.rowIndex!.set(key, path);
    if (w !== undefined) this.rowWrites.push(w);
  }

  private keyRow(raw: RawTuple): Record<string, JsonValue | undefined> {
    const row: Record<string, JsonValue | undefined> = {};
    for (const c of this.pathColumns) {
      const text = raw[c.name];
      if (text !== undefined) row[c.name] = text === null ? null : c.convert(text);
    }
    return row;
  }

  private keyOf(row: Record<string, JsonValue | undefined>): string {
    return JSON.stringify(this.spec.keyColumns.map((k) => row[k] ?? null));
  }

  private render(row: Record<string, JsonValue | undefined>): string | undefined {
    const path = this.spec.template.render((f) => row[f]);
    return typeof path === 'string' ? path : undefined;
  }

  private unmappable(kind: string, row: Record<string, JsonValue | undefined>): void {
    const missing = this.spec.template.fields.filter((f) => row[f] === undefined);
    this.log.warn({ table: this.name, kind, missing }, 'row skipped: its path columns were not sent (unchanged TOAST value in a path column)');
  }
}

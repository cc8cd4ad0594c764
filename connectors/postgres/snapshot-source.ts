/**
 * The initial snapshot: every configured table read inside one REPEATABLE READ transaction that
 * adopts the slot's exported snapshot, through a server-side cursor, `batchRows` rows at a time,
 * so a table never has to fit in memory; a mapping's `where:` is the cursor's WHERE. Each batch is one `sink.apply` call.
 */
import type { Logger } from 'pino';
import pg from 'pg';
import type { IngestSink } from '../../core/ingest.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import { quoteTable } from './catalog.ts';
import { RAW_TEXT_TYPES } from './connection.ts';
import { toConnectorError } from './errors.ts';
import { applyToSink } from './sink.ts';
import type { RawTuple, TableMapper } from './table-mapper.ts';

export interface SnapshotProgress {
  readonly table: string;
  readonly rows: number;
  /** pg_class.reltuples at start; 0 when the table was never analyzed. */
  readonly totalEstimate: number;
}

export interface SnapshotOptions {
  readonly client: pg.ClientBase;
  readonly snapshotName: string;
  readonly tables: readonly TableMapper[];
  readonly batchRows: number;
  readonly sink: IngestSink;
  readonly log: Logger;
  readonly target: string;
  /** Called after each applied batch. */
  readonly onProgress?: (p: SnapshotProgress) => void;
}

export class SnapshotSource {
  /** By position in postgres.tables (a table may be mapped twice). */
  private readonly progress = new Map<number, SnapshotProgress>();

  constructor(private readonly options: SnapshotOptions) {
    for (const t of options.tables) this.progress.set(t.spec.index, { table: t.name, rows: 0, totalEstimate: t.spec.table.rowEstimate });
  }

  /** Rows applied so far, per table. */
  get tables(): SnapshotProgress[] {
    return [...this.progress.values()];
  }

  async run(): Promise<void> {
    const { client, snapshotName, log, target } = this.options;
    let doing = 'starting the snapshot transaction';
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(snapshotName)}`);
      for (const mapper of this.options.tables) {
        doing = `reading ${mapper.name} for the snapshot`;
        const started = Date.now();
        const rows = await this.copyTable(mapper);
        log.info({ table: mapper.name, rows, ms: Date.now() - started }, 'snapshot of table applied');
      }
      doing = 'ending the snapshot transaction';
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw toConnectorError(err, doing, target);
    }
  }

  private async copyTable(mapper: TableMapper): Promise<number> {
    const { client, batchRows, sink } = this.options;
    const columns = mapper.selectedColumns.map((c) => pg.escapeIdentifier(c)).join(', ');
    // The mapping's where, as the publication's row filter applies it to the stream (Postgres 15+).
    const where = mapper.spec.mapping.where === undefined ? '' : ` WHERE (${mapper.spec.mapping.where})`;
    mapper.startRead();
    await client.query(`DECLARE tidewire_snapshot NO SCROLL CURSOR FOR SELECT ${columns} FROM ${quoteTable(mapper.spec.table)}${where}`);
    const fetch = () => client.query<RawTuple>({ text: `FETCH ${batchRows} FROM tidewire_snapshot`, types: RAW_TEXT_TYPES });
    let total = 0;
    // The next batch is fetched while this one is mapped and applied.
    let pending = fetch();
    for (;;) {
      const { rows } = await pending;
      if (rows.length === 0) break;
      if (rows.length === batchRows) {
        pending = fetch();
        pending.catch(() => {}); // observed by the next await; this only keeps a failure from going unhandled meanwhile
      }
      const updates: TopicUpdate[] = [];
      for (const row of rows) mapper.snapshotRow(row, updates);
      await applyToSink(sink, updates, undefined, mapper.takeRowWrites());
      total += rows.length;
      const p = { ...this.progress.get(mapper.spec.index)!, rows: total };
      this.progress.set(mapper.spec.index, p);
      this.options.onProgress?.(p);
      if (rows.length < batchRows) break;
    }
    await client.query('CLOSE tidewire_snapshot');
    return total;
  }
}

/**
 * Turns decoded pgoutput messages into sink calls, one transaction at a time, and keeps the
 * position that may be acknowledged. Knows nothing of connections: stream-source.ts feeds it
 * messages in stream order and reads `durableLsn` to acknowledge and to resume.
 *
 * Exactly once towards the sink across reconnects: a transaction is applied, then its commit LSN
 * is remembered; after a reconnect Postgres may resend transactions we applied but had not yet
 * acknowledged, and any whose commit LSN is at or before the last applied one is skipped. A large
 * transaction is applied in chunks; if the connection drops between chunks, the changes already
 * applied are skipped when the same transaction arrives again (the decoded stream of a
 * transaction is deterministic).
 */
import type { Logger } from 'pino';
import type { TopicUpdate } from '../../core/topic.ts';
import type { IngestSink, RowWrite, TransactionPart } from '../../core/ingest.ts';
import { PostgresConnectorError } from './errors.ts';
import { type Lsn, formatLsn, maxLsn, parseLsn } from './lsn.ts';
import type { PgoutputMessage } from './pgoutput-reader.ts';
import { applyToSink, removeFromSink } from './sink.ts';
import type { ColumnType, RawTuple, TableMapper } from './table-mapper.ts';
import type { TypeRegistry } from './type-registry.ts';

export const DEFAULT_CHUNK_UPDATES = 10_000;

export interface ApplierOptions {
  readonly sink: IngestSink;
  readonly mappers: readonly TableMapper[];
  readonly types: TypeRegistry;
  /** Looks up type OIDs the registry does not know (a column added with a new domain or enum). */
  readonly resolveTypes: (oids: number[]) => Promise<void>;
  readonly log: Logger;
  /** The slot's consistent point: the snapshot covers everything before it. */
  readonly startLsn: Lsn;
  /** Updates per sink.apply call within one large transaction. */
  readonly chunkUpdates?: number;
  /**
   * Sources (tables) just re-read through a snapshot taken at an LSN after `startLsn`: their
   * changes in transactions committed before that LSN are in the snapshot already and are skipped.
   */
  readonly holds?: ReadonlyMap<string, Lsn>;
  /** Called once, when the applied position passes every hold (the re-read tables are caught up). */
  readonly onHoldsPassed?: (lsn: Lsn) => void;
}

/** The name positions of this connector are stored under (SourcePosition.name). */
export const POSITION_NAME = 'postgres';
/** The parts of a transaction applied in chunks (IngestSink.apply's `part`). */
const MORE: TransactionPart = { transaction: POSITION_NAME, last: false };
const LAST: TransactionPart = { transaction: POSITION_NAME, last: true };

interface OpenTransaction {
  readonly commitLsn: Lsn;
  /** Commit time as Postgres sent it: microseconds since the Unix epoch. */
  readonly commitTime: bigint;
  /** Already applied (commit LSN at or before the last applied one): decode, apply nothing. */
  readonly skip: boolean;
  /** Change messages of this transaction already applied before a reconnect. */
  readonly resumeAfter: number;
  /** Change messages seen so far. */
  seen: number;
  updates: TopicUpdate[];
  /** A part of it was applied (a chunk, or the changes before a TRUNCATE): its commit must close it, updates or not. */
  parted: boolean;
}

export class TransactionApplier {
  /** Everything before this LSN is applied: the position to acknowledge and to resume from. */
  durableLsn: Lsn;
  /** End LSN of the last transaction applied (for health); the start LSN before any. */
  lastAppliedLsn: Lsn;
  transactionsApplied = 0;
  transactionsSkipped = 0;
  changesApplied = 0;
  /** Commit time (ms since the epoch) of the last transaction applied; null before any (replication lag in seconds). */
  lastCommitTimeMs: number | null = null;

  private lastCommitLsn: Lsn = 0n;
  private txn: OpenTransaction | null = null;
  private partial: { commitLsn: Lsn; applied: number } | null = null;
  private readonly chunkUpdates: number;
  private readonly byName = new Map<string, TableMapper[]>();
  private readonly byRelation = new Map<number, readonly TableMapper[]>();
  private holds: ReadonlyMap<string, Lsn> | null;
  private readonly holdsEnd: Lsn;

  constructor(private readonly options: ApplierOptions) {
    this.durableLsn = options.startLsn;
    this.lastAppliedLsn = options.startLsn;
    this.chunkUpdates = options.chunkUpdates ?? DEFAULT_CHUNK_UPDATES;
    this.holds = options.holds && options.holds.size > 0 ? options.holds : null;
    this.holdsEnd = this.holds ? [...this.holds.values()].reduce((a, b) => maxLsn(a, b), 0n) : 0n;
    for (const m of options.mappers) {
      const list = this.byName.get(m.name);
      if (list) list.push(m);
      else this.byName.set(m.name, [m]);
    }
  }

  get inTransaction(): boolean {
    return this.txn !== null;
  }

  /** A new replication connection: any open transaction will be sent again from its BEGIN. */
  beginConnection(): void {
    this.txn = null;
  }

  /**
   * Handles one message. Returns a promise only when it has to wait (a sink call, a type lookup),
   * so the common insert/update/delete path costs no microtask.
   */
  handle(msg: PgoutputMessage): Promise<void> | void {
    switch (msg.tag) {
      case 'begin':
        return this.begin(parseLsn(msg.commitLsn!), typeof msg.commitTime === 'bigint' ? msg.commitTime : 0n);
      case 'commit':
        return this.commit(parseLsn(msg.commitEndLsn!));
      case 'relation':
        return this.relation(msg.relationOid, `${msg.schema}.${msg.name}`, msg.columns);
      case 'insert':
        return this.change(msg.relation.relationOid, (m, out) => m.insert(msg.new as RawTuple, out));
      case 'update':
        return this.change(msg.relation.relationOid, (m, out) => m.update(msg.new as RawTuple, (msg.key ?? msg.old) as RawTuple | null, out));
      case 'delete':
        return this.change(msg.relation.relationOid, (m, out) => m.delete((msg.key ?? msg.old) as RawTuple, out));
      case 'truncate':
        return this.truncate(msg.relations.map((r) => r.relationOid));
      case 'parse-failure':
        throw new PostgresConnectorError('PG_PROTOCOL', 'could not decode a pgoutput message: report this as a tidewire bug', { cause: msg.error });
      case 'type':
      case 'origin':
      case 'message':
        return;
      default:
        throw new PostgresConnectorError('PG_PROTOCOL', `unexpected pgoutput message ${JSON.stringify((msg as { tag?: unknown }).tag)}: report this as a tidewire bug`);
    }
  }

  /**
   * A keepalive carrying the server's WAL position. Called in stream order: when no transaction
   * is open, everything the server sent before it has been handled, so the slot may advance to
   * it even if none of it touched a configured table (otherwise an idle table would pin WAL).
   */
  keepalive(walEnd: Lsn): void {
    if (this.txn === null && this.partial === null && walEnd > this.durableLsn) {
      this.durableLsn = walEnd;
      this.checkHolds();
    }
  }

  private checkHolds(): void {
    if (this.holds !== null && this.durableLsn >= this.holdsEnd) {
      this.holds = null;
      this.options.onHoldsPassed?.(this.durableLsn);
    }
  }

  /** True when the mapper's table was re-read by a snapshot that already holds this transaction. */
  private held(m: TableMapper, commitLsn: Lsn): boolean {
    const until = this.holds!.get(m.source);
    return until !== undefined && commitLsn < until;
  }

  private begin(commitLsn: Lsn, commitTime: bigint): void {
    if (this.txn) throw this.protocol('BEGIN inside an open transaction');
    const skip = commitLsn <= this.lastCommitLsn;
    let resumeAfter = 0;
    if (this.partial) {
      if (this.partial.commitLsn === commitLsn) resumeAfter = this.partial.applied;
      else if (!skip) throw this.protocol(`transaction ${formatLsn(this.partial.commitLsn)} was partly applied but ${formatLsn(commitLsn)} came next`);
    }
    this.txn = { commitLsn, commitTime, skip, resumeAfter, seen: 0, updates: [], parted: resumeAfter > 0 };
    if (skip) this.options.log.debug({ lsn: formatLsn(commitLsn) }, 'skipping a transaction applied before the reconnect');
  }

  private async commit(endLsn: Lsn): Promise<void> {
    const txn = this.txn;
    if (!txn) throw this.protocol('COMMIT without BEGIN');
    if (txn.skip) {
      this.transactionsSkipped++;
    } else {
      if (txn.updates.length > 0 || txn.parted) await this.flush(txn, txn.seen, endLsn);
      this.lastCommitLsn = txn.commitLsn;
      this.lastAppliedLsn = endLsn;
      this.lastCommitTimeMs = Number(txn.commitTime / 1000n);
      this.partial = null;
      this.transactionsApplied++;
    }
    this.txn = null;
    this.durableLsn = maxLsn(this.durableLsn, endLsn);
    this.checkHolds();
  }

  private async relation(oid: number, name: string, columns: readonly ColumnType[]): Promise<void> {
    const mappers = this.byName.get(name) ?? [];
    if (mappers.length === 0 && (this.byRelation.get(oid)?.length ?? 0) > 0) {
      this.options.log.warn({ table: name }, 'a configured table was renamed: its changes are no longer mapped until tidewire restarts with the new name');
    }
    this.byRelation.set(oid, mappers);
    if (mappers.length === 0) return;
    const unknown = this.options.types.unknown(columns.map((c) => c.typeOid));
    if (unknown.length > 0) await this.options.resolveTypes(unknown);
    const cols = columns.map((c) => ({ name: c.name, typeOid: c.typeOid }));
    for (const m of mappers) m.setColumns(cols);
  }

  private change(relationOid: number, map: (m: TableMapper, out: TopicUpdate[]) => void): Promise<void> | void {
    const txn = this.txn;
    if (!txn) throw this.protocol('a row change outside a transaction');
    if (txn.skip || txn.seen++ < txn.resumeAfter) return;
    const mappers = this.byRelation.get(relationOid);
    if (!mappers) throw this.protocol(`a row change for relation ${relationOid} before its Relation message`);
    if (this.holds === null) {
      for (const m of mappers) map(m, txn.updates);
    } else {
      for (const m of mappers) if (!this.held(m, txn.commitLsn)) map(m, txn.updates);
    }
    this.changesApplied++;
    if (txn.updates.length >= this.chunkUpdates) return this.flush(txn);
  }

  private async truncate(relationOids: number[]): Promise<void> {
    const txn = this.txn;
    if (!txn) throw this.protocol('TRUNCATE outside a transaction');
    if (txn.skip || txn.seen++ < txn.resumeAfter) return;
    // Changes before the TRUNCATE go first, so the sink sees them in order.
    if (txn.updates.length > 0) await this.flush(txn, txn.seen - 1);
    const sources = new Set<string>();
    for (const oid of relationOids) {
      for (const m of this.byRelation.get(oid) ?? []) {
        if (this.holds !== null && this.held(m, txn.commitLsn)) continue;
        m.truncate();
        sources.add(m.source);
      }
    }
    for (const source of sources) await removeFromSink(this.options.sink, source);
    this.partial = { commitLsn: txn.commitLsn, applied: txn.seen };
  }

  /**
   * Applies the pending updates; `appliedThrough` counts the change messages they cover. The last
   * chunk of a transaction carries its end LSN: stored with it, the position resumed from. The
   * chunks before it are applied with `more` (IngestSink.apply): clients see the transaction whole.
   */
  private async flush(txn: OpenTransaction, appliedThrough = txn.seen, endLsn?: Lsn): Promise<void> {
    const more = endLsn === undefined;
    if (more) txn.parted = true;
    const updates = txn.updates;
    txn.updates = [];
    let rows: RowWrite[] | undefined;
    for (const m of this.options.mappers) {
      const w = m.takeRowWrites();
      if (w !== undefined) rows = rows === undefined ? w : rows.concat(w);
    }
    const part = more ? MORE : txn.parted ? LAST : undefined;
    await applyToSink(this.options.sink, updates, more ? undefined : { name: POSITION_NAME, position: formatLsn(endLsn) }, rows, part);
    this.partial = { commitLsn: txn.commitLsn, applied: appliedThrough };
  }

  private protocol(what: string): PostgresConnectorError {
    return new PostgresConnectorError('PG_PROTOCOL', `replication stream out of order: ${what}. Restart tidewire; report it if it recurs`);
  }
}

/**
 * The Postgres connector: preflight, publication, a fresh slot with an exported snapshot, the
 * snapshot read through that snapshot, then streaming from the slot's consistent point. Nothing
 * is lost or applied twice across the hand-off: the snapshot shows exactly the transactions
 * committed before the consistent point, the slot sends exactly those after it.
 *
 * Durability: topic state lives in memory, so every start() re-snapshots under a new slot; the
 * caller gives each process a fresh TopicStore (a new epoch) so clients can tell.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import type { PostgresConfig } from './postgres-options.ts';
import { ConfigError, TidewireError } from '../../core/errors.ts';
import { PathTemplate } from '../mapping/path-template.ts';
import type { IngestSink, Source, SourceHealth, SourceState } from '../../core/ingest.ts';
import { type BackoffOptions, DEFAULT_BACKOFF } from '../../core/backoff.ts';
import { clientConfig, closeClient, openClient } from './connection.ts';
import { ConnectorState } from './connector-state.ts';
import { PostgresConnectorError, describeTarget, toConnectorError } from './errors.ts';
import { formatLsn } from './lsn.ts';
import { runPreflight } from './preflight.ts';
import { ensurePublication } from './publication.ts';
import { createSlotWithSnapshot, dropSlotWhenFree } from './slot.ts';
import { type SnapshotProgress, SnapshotSource } from './snapshot-source.ts';
import { DEFAULT_QUEUE_BYTES, StreamSource } from './stream-source.ts';
import { TableMapper } from './table-mapper.ts';
import { TransactionApplier } from './transaction-applier.ts';
import { TypeRegistry } from './type-registry.ts';

export interface PostgresConnectorOptions {
  /** The connector logs through a child with `slot`, and `lsn` / `table` where they apply; namespace it as you like. */
  logger: Logger;
  /** Called after each snapshot batch is applied. */
  onSnapshotProgress?: (p: SnapshotProgress) => void;
  /** Reconnect backoff after a lost replication connection. Defaults: 500 ms doubling to 30 s. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /**
   * How long start() waits for the slot when another process holds it, before failing with
   * PG_SLOT_IN_USE: after a kill -9 of a previous tidewire its walsender can linger a few
   * seconds. Default 10 000.
   */
  slotBusyTimeoutMs?: number;
}

export interface PostgresHealth extends SourceHealth {
  readonly slot: string;
  /** End LSN of the last transaction applied to the sink (the consistent point right after the snapshot). */
  readonly lastAppliedLsn: string | null;
  /** The last position reported to Postgres as flushed (the slot's confirmed_flush_lsn follows it). */
  readonly lastAckedLsn: string | null;
  /** Commit time of the last transaction applied (ISO-8601); null before any. */
  readonly lastCommitTime: string | null;
  readonly reconnects: number;
  /** Replication messages received and not yet applied (the ingest queue's depth). */
  readonly queuedMessages: number;
  /** Their wire bytes; reading from Postgres pauses past postgres.ingestQueueBytes. */
  readonly queuedBytes: number;
  readonly transactionsApplied: number;
  /** Transactions Postgres resent after a reconnect that had already been applied, and were skipped. */
  readonly transactionsSkipped: number;
  /** Rows applied per table by the initial snapshot. */
  readonly snapshot: readonly SnapshotProgress[];
}

const SLOT_NAME = /^[a-z0-9_]{1,63}$/;
const PUBLICATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Streams the configured tables into `sink` as topics.
 *
 * @example
 * const store = new TopicStore();
 * const connector = new PostgresConnector(config.postgres, new Pipeline(store, handoff), { logger });
 * await connector.start(); // snapshot applied, streaming
 * // ...
 * await connector.stop(); // replication connection closed; the slot is kept
 */
export class PostgresConnector implements Source {
  readonly name = 'postgres';
  private readonly config: Required<PostgresConfig>;
  private readonly reconnect: BackoffOptions;
  private readonly slotBusyTimeoutMs: number;
  private readonly log: Logger;
  private readonly target: string;
  private readonly lifecycle = new ConnectorState();
  private readonly clients = new Set<pg.Client>();
  private abort = new AbortController();
  private stopping = false;
  private snapshot: SnapshotSource | null = null;
  private applier: TransactionApplier | null = null;
  private stream: StreamSource | null = null;

  constructor(
    config: PostgresConfig,
    private readonly sink: IngestSink,
    private readonly options: PostgresConnectorOptions,
  ) {
    this.config = validateConfig(config);
    const initialMs = options.reconnect?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    if (!(initialMs >= 1)) throw new RangeError('PostgresConnector: options.reconnect.initialMs must be at least 1');
    this.reconnect = { initialMs, maxMs: Math.max(initialMs, options.reconnect?.maxMs ?? DEFAULT_BACKOFF.maxMs) };
    this.slotBusyTimeoutMs = options.slotBusyTimeoutMs ?? 10_000;
    this.target = describeTarget(this.config.url);
    this.log = options.logger.child({ slot: this.config.slot });
  }

  /** Resolves once the snapshot is applied and streaming has begun; rejects with a TidewireError. */
  async start(): Promise<void> {
    const { config, log, target } = this;
    this.lifecycle.transition('starting', `connecting to ${target}`);
    this.stopping = false;
    this.abort = new AbortController();
    this.snapshot = null;
    this.applier = null;
    this.stream = null;
    let doing = 'connecting';
    let meta: pg.Client | null = null;
    let repl: pg.Client | null = null;
    try {
      meta = await this.open('query');
      doing = 'checking the server and the configured tables';
      const preflight = await runPreflight(meta, config.tables);
      const types = new TypeRegistry();
      await types.resolve(meta, preflight.tables.flatMap((t) => t.table.columns.map((c) => c.typeOid)));
      const mappers = preflight.tables.map((spec) => new TableMapper(spec, types, log));

      // The slot first: while another tidewire streams from it, this one must not touch its publication.
      doing = 'preparing the replication slot';
      await dropSlotWhenFree(meta, { slot: config.slot, database: preflight.server.database, busyTimeoutMs: this.slotBusyTimeoutMs, log, target, signal: this.abort.signal });
      doing = 'setting up the publication';
      await ensurePublication(meta, { name: config.publication, tables: preflight.tables.map((t) => t.table), serverVersionNum: preflight.server.versionNum, log, target });

      doing = 'creating the replication slot';
      repl = await this.open('replication');
      const slot = await createSlotWithSnapshot(repl, config.slot, preflight.server.versionNum, target);
      log.info({ lsn: formatLsn(slot.consistentPoint) }, 'created replication slot with an exported snapshot');

      this.throwIfStopping();
      this.lifecycle.transition('snapshotting', `reading ${mappers.length} table(s) at ${formatLsn(slot.consistentPoint)}`);
      doing = 'taking the snapshot';
      const started = Date.now();
      this.snapshot = new SnapshotSource({
        client: meta,
        snapshotName: slot.snapshotName,
        tables: mappers,
        batchRows: config.snapshotBatchRows,
        sink: this.sink,
        log,
        target,
        onProgress: this.options.onSnapshotProgress,
      });
      await this.snapshot.run();
      const rows = this.snapshot.tables.reduce((n, t) => n + t.rows, 0);
      const ms = Date.now() - started;
      log.info({ rows, ms, rowsPerSecond: Math.round((rows * 1000) / Math.max(1, ms)) }, 'snapshot applied');
      // The exported snapshot lives only as long as the connection that created the slot.
      await this.close(repl);
      repl = null;
      await this.close(meta);
      meta = null;

      doing = 'starting to stream';
      this.throwIfStopping();
      this.applier = new TransactionApplier({
        sink: this.sink,
        mappers,
        types,
        resolveTypes: (oids) => this.resolveTypes(types, oids),
        log,
        startLsn: slot.consistentPoint,
      });
      this.stream = new StreamSource({
        connection: clientConfig(config.url, 'replication'),
        slot: config.slot,
        publication: config.publication,
        statusIntervalMs: config.statusIntervalMs,
        queueBytes: config.ingestQueueBytes,
        reconnect: this.reconnect,
        applier: this.applier,
        log,
        target,
        onStreaming: () => this.transitionUnlessStopping('streaming'),
        onDegraded: (detail) => this.transitionUnlessStopping('degraded', detail),
        onFailed: (err) => this.transitionUnlessStopping('failed', err.message),
      });
      await this.stream.start();
    } catch (err) {
      await this.close(repl);
      await this.close(meta);
      const error = this.stopping
        ? new PostgresConnectorError('PG_STOPPED', 'the connector was stopped while starting', { cause: err })
        : err instanceof TidewireError
          ? err
          : toConnectorError(err, doing, target);
      if (!this.stopping && this.lifecycle.state !== 'failed') this.lifecycle.transition('failed', error.message);
      if (!this.stopping) log.error({ code: error.code, err: error }, 'postgres connector could not start');
      throw error;
    }
  }

  /** Closes the replication connection after the change being applied; the slot is kept. */
  async stop(): Promise<void> {
    if (this.lifecycle.state === 'stopped') return;
    this.stopping = true;
    this.abort.abort();
    await this.stream?.stop();
    for (const c of [...this.clients]) await this.close(c);
    this.lifecycle.transition('stopped', 'stopped; the replication slot is kept');
    this.log.info({ lsn: this.applier ? formatLsn(this.applier.durableLsn) : undefined }, 'stopped');
  }

  health(): PostgresHealth {
    const acked = this.stream?.lastAckedLsn ?? 0n;
    return {
      name: this.name,
      state: this.lifecycle.state,
      detail: this.lifecycle.detail,
      slot: this.config.slot,
      lastAppliedLsn: this.applier ? formatLsn(this.applier.lastAppliedLsn) : null,
      lastAckedLsn: acked > 0n ? formatLsn(acked) : null,
      lastCommitTime: this.applier?.lastCommitTimeMs != null ? new Date(this.applier.lastCommitTimeMs).toISOString() : null,
      reconnects: this.stream?.reconnects ?? 0,
      queuedMessages: this.stream?.queued ?? 0,
      queuedBytes: this.stream?.queuedBytes ?? 0,
      transactionsApplied: this.applier?.transactionsApplied ?? 0,
      transactionsSkipped: this.applier?.transactionsSkipped ?? 0,
      snapshot: this.snapshot?.tables ?? [],
    };
  }

  /** stop() may run while start() awaits; start() must not go on to open a stream after it. */
  private throwIfStopping(): void {
    if (this.stopping) throw new PostgresConnectorError('PG_STOPPED', 'the connector was stopped while starting');
  }

  private transitionUnlessStopping(to: SourceState, detail?: string): void {
    if (!this.stopping) this.lifecycle.transition(to, detail);
  }

  private async open(kind: 'query' | 'replication'): Promise<pg.Client> {
    const client = await openClient(clientConfig(this.config.url, kind), this.target, this.log);
    this.clients.add(client);
    return client;
  }

  private async close(client: pg.Client | null): Promise<void> {
    if (!client) return;
    this.clients.delete(client);
    await closeClient(client);
  }

  /** A Relation message named types the registry does not know (a column added mid-stream). */
  private async resolveTypes(types: TypeRegistry, oids: number[]): Promise<void> {
    const client = await this.open('query');
    try {
      await types.resolve(client, oids);
    } catch (err) {
      throw toConnectorError(err, 'looking up column types', this.target);
    } finally {
      await this.close(client);
    }
  }
}

function validateConfig(config: PostgresConfig): Required<PostgresConfig> {
  const c: Required<PostgresConfig> = {
    url: config.url,
    slot: config.slot ?? 'tidewire',
    publication: config.publication ?? 'tidewire',
    snapshotBatchRows: config.snapshotBatchRows ?? 5000,
    statusIntervalMs: config.statusIntervalMs ?? 1000,
    ingestQueueBytes: config.ingestQueueBytes ?? DEFAULT_QUEUE_BYTES,
    tables: config.tables,
  };
  if (typeof c.url !== 'string' || c.url.length === 0) throw new ConfigError('postgres.url', 'is required, e.g. postgres://user:pass@host:5432/db');
  if (!SLOT_NAME.test(c.slot)) throw new ConfigError('postgres.slot', 'must be 1-63 characters of a-z, 0-9 and _');
  if (!PUBLICATION_NAME.test(c.publication)) throw new ConfigError('postgres.publication', 'must be a letter or _ followed by up to 62 letters, digits or _');
  if (!Number.isInteger(c.snapshotBatchRows) || c.snapshotBatchRows < 1) throw new ConfigError('postgres.snapshotBatchRows', 'must be an integer of at least 1');
  if (!Number.isInteger(c.statusIntervalMs) || c.statusIntervalMs < 100) throw new ConfigError('postgres.statusIntervalMs', 'must be an integer of at least 100');
  if (!Number.isInteger(c.ingestQueueBytes) || c.ingestQueueBytes < 65_536 || c.ingestQueueBytes > 2 ** 30) {
    throw new ConfigError('postgres.ingestQueueBytes', 'must be an integer from 65536 (64 KiB) to 1073741824 (1 GiB); default 8388608 (8 MiB)');
  }
  if (!Array.isArray(c.tables) || c.tables.length === 0) throw new ConfigError('postgres.tables', 'must list at least one table');
  // Template syntax is checked now; whether its placeholders are columns is checked at start().
  c.tables.forEach((t, i) => new PathTemplate(t.path, `postgres.tables.${i}.path`));
  return c;
}

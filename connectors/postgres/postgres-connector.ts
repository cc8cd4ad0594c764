/**
 * The Postgres connector: preflight, publication, a fresh slot with an exported snapshot, the
 * snapshot read through that snapshot, then streaming from the slot's consistent point. Nothing
 * is lost or applied twice across the hand-off: the snapshot shows exactly the transactions
 * committed before the consistent point, the slot sends exactly those after it.
 *
 * Durability: with `checkpoints` (durable state) a start resumes from the stored LSN when the
 * slot still covers it, and positions are acknowledged only once the state covering them is
 * durable. Without, topic state lives in memory, so every start() re-snapshots under a new slot.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import type { PostgresConfig } from './postgres-options.ts';
import { ConfigError, TidewireError } from '../../core/errors.ts';
import { PathTemplate } from '../mapping/path-template.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IngestSink, Resync, Source, SourceCheckpoints, SourceHealth, SourceState } from '../../core/ingest.ts';
import { Backoff, type BackoffOptions, DEFAULT_BACKOFF } from '../../core/backoff.ts';
import { DEFAULT_CONNECT_RETRIES, clientConfig, closeClient, openClientWithRetry } from './connection.ts';
import { ConnectorState } from './connector-state.ts';
import { PostgresConnectorError, describeTarget, toConnectorError } from './errors.ts';
import { type Lsn, formatLsn, parseLsn } from './lsn.ts';
import { mappingFingerprints } from './mapping-fingerprint.ts';
import { runPreflight } from './preflight.ts';
import { ensurePublication } from './publication.ts';
import { applyToSink, removeFromSink } from './sink.ts';
import { createSlotWithSnapshot, dropSlotWhenFree, freeSlot } from './slot.ts';
import { type SnapshotProgress, SnapshotSource } from './snapshot-source.ts';
import { DEFAULT_QUEUE_BYTES, StreamSource } from './stream-source.ts';
import { TableMapper } from './table-mapper.ts';
import { POSITION_NAME, TransactionApplier } from './transaction-applier.ts';
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
  /**
   * Durable state: where this source was read up to, and when a position may be acknowledged.
   * Absent: every start re-reads every table under a new slot (state in memory).
   */
  checkpoints?: SourceCheckpoints;
}

/** How a start reaches a complete state (PostgresConnector.plan). */
type StartPlan =
  | { readonly kind: 'snapshot' | 'resnapshot' }
  | { readonly kind: 'resume'; readonly lsn: Lsn; readonly reread: readonly string[]; readonly gone: readonly string[] };

/** The tables of this connector among stored fingerprints (sources named `postgres:<schema>.<table>`). */
function ownSources(fingerprints: Readonly<Record<string, string>>): string[] {
  return Object.keys(fingerprints).filter((source) => source.startsWith('postgres:'));
}

/** `<system identifier>/<database>`: the cluster and database a stored state belongs to. */
async function systemIdentity(client: pg.Client, database: string): Promise<string> {
  const { rows } = await client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
  return `${rows[0].id}/${database}`;
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
  /** How the last start reached a complete state (null before one did). */
  readonly startedBy: 'snapshot' | 're-snapshot' | 'resumed' | 'resumed, some tables re-read' | null;
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
  /** How the last start reached its state: for health and tests. */
  private startedBy: 'snapshot' | 're-snapshot' | 'resumed' | 'resumed, some tables re-read' | null = null;

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

  /**
   * Resolves once the state is complete and streaming has begun; rejects with a TidewireError.
   * With durable state (`checkpoints`) a start resumes from the stored position when it can, and
   * re-reads only the tables whose mapping changed (see `plan`).
   */
  async start(): Promise<void> {
    const { config, log, target } = this;
    this.lifecycle.transition('starting', `connecting to ${target}`);
    this.stopping = false;
    this.abort = new AbortController();
    this.snapshot = null;
    this.applier = null;
    this.stream = null;
    this.startedBy = null;
    let doing = 'connecting';
    let meta: pg.Client | null = null;
    try {
      meta = await this.open('query', config.connectRetries);
      doing = 'checking the server and the configured tables';
      const preflight = await runPreflight(meta, config.tables);
      const types = new TypeRegistry();
      await types.resolve(meta, preflight.tables.flatMap((t) => t.table.columns.map((c) => c.typeOid)));
      const cp = this.options.checkpoints ?? null;
      const mappers = preflight.tables.map((spec) => new TableMapper(spec, types, log, cp));
      const fingerprints = mappingFingerprints(mappers);
      if (cp) {
        doing = 'checking the stored state belongs to this database';
        await cp.claim(POSITION_NAME, await systemIdentity(meta, preflight.server.database));
      }

      // The slot first: while another tidewire streams from it, this one must not touch its publication.
      doing = 'preparing the replication slot';
      const plan = await this.plan(meta, cp, fingerprints, mappers, preflight.server.database);
      doing = 'setting up the publication';
      await ensurePublication(meta, { name: config.publication, tables: preflight.tables, serverVersionNum: preflight.server.versionNum, log, target });
      await this.close(meta);
      meta = null;

      let startLsn: Lsn;
      let holds: Map<string, Lsn> | undefined;
      if (plan.kind === 'resume') {
        startLsn = plan.lsn;
        for (const source of plan.gone) {
          await removeFromSink(this.sink, source);
          // Its stored row index too (it can be as large as the table): a table mapped again is read again.
          cp!.rowIndex(source)?.clear(false);
        }
        if (plan.gone.length > 0) await cp!.setFingerprints(Object.fromEntries(plan.gone.map((g) => [g, null])));
        if (plan.reread.length > 0) {
          const reread = mappers.filter((m) => plan.reread.includes(m.source));
          const at = await this.readSnapshot(reread, preflight.server.versionNum, {
            temporary: true,
            resync: cp!,
            position: false,
            detail: `re-reading ${reread.map((m) => m.name).join(', ')}; the other tables resume at ${formatLsn(startLsn)}`,
          });
          holds = new Map(plan.reread.map((source) => [source, at]));
        }
        this.startedBy = plan.reread.length > 0 ? 'resumed, some tables re-read' : 'resumed';
        log.info({ lsn: formatLsn(startLsn), reread: plan.reread }, plan.reread.length > 0 ? 'resuming from the stored position; re-reading the tables whose mapping changed' : 'resuming from the stored position');
      } else {
        this.startedBy = plan.kind === 'resnapshot' ? 're-snapshot' : 'snapshot';
        startLsn = await this.readSnapshot(mappers, preflight.server.versionNum, {
          temporary: false,
          resync: cp && cp.holdsTopics() ? cp : null,
          position: true,
          database: preflight.server.database,
        });
        // This connector's tables only: other sources (Kafka) keep theirs.
        if (cp) await cp.setFingerprints(Object.fromEntries([...ownSources(cp.fingerprints()).map((k) => [k, null] as const), ...fingerprints]));
      }

      doing = 'starting to stream';
      this.throwIfStopping();
      const changed = plan.kind === 'resume' ? plan.reread : [];
      this.applier = new TransactionApplier({
        sink: this.sink,
        mappers,
        types,
        resolveTypes: (oids) => this.resolveTypes(types, oids),
        log,
        startLsn,
        holds,
        // The re-read tables are caught up: their fingerprints may be stored, with a position past
        // the snapshot they were read at (a crash before that re-reads them again).
        onHoldsPassed: (lsn) =>
          void cp!
            .checkpoint({ name: POSITION_NAME, position: formatLsn(lsn) })
            .then(() => cp!.setFingerprints(Object.fromEntries(changed.map((c) => [c, fingerprints.get(c)!]))))
            .catch((err: unknown) => log.error({ err }, 'could not store the fingerprints of the re-read tables: they are re-read at the next start')),
      });
      this.stream = new StreamSource({
        connection: clientConfig(config.url, 'replication'),
        slot: config.slot,
        publication: config.publication,
        statusIntervalMs: config.statusIntervalMs,
        queueBytes: config.ingestQueueBytes,
        reconnect: this.reconnect,
        applier: this.applier,
        checkpoint: cp ? (lsn) => cp.checkpoint({ name: POSITION_NAME, position: formatLsn(lsn) }) : undefined,
        log,
        target,
        onStreaming: () => this.transitionUnlessStopping('streaming'),
        onDegraded: (detail) => this.transitionUnlessStopping('degraded', detail),
        onFailed: (err) => this.transitionUnlessStopping('failed', err.message),
      });
      await this.stream.start();
    } catch (err) {
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

  /**
   * How this start gets to a complete state. With no stored position (no durable state, or a first
   * start): a snapshot. With one: resume from it when the slot still covers it (it exists, its WAL
   * is kept, and it was not acknowledged past the stored position), re-reading only tables whose
   * mapping fingerprint changed (or that need their row index rebuilt); otherwise a re-snapshot,
   * diffed against the state.
   */
  private async plan(
    meta: pg.Client,
    cp: SourceCheckpoints | null,
    fingerprints: ReadonlyMap<string, string>,
    mappers: readonly TableMapper[],
    database: string,
  ): Promise<StartPlan> {
    const { config, log, target } = this;
    const slotOptions = { slot: config.slot, database, busyTimeoutMs: this.slotBusyTimeoutMs, log, target, signal: this.abort.signal };
    // Waits while another process streams from the slot: this one must not touch its publication meanwhile.
    const slot = await freeSlot(meta, slotOptions);
    const storedText = cp?.stored(POSITION_NAME) ?? null;
    if (storedText === null) return { kind: cp && cp.holdsTopics() ? 'resnapshot' : 'snapshot' };
    const stored = parseLsn(storedText);
    const why =
      slot === null
        ? `replication slot "${config.slot}" no longer exists`
        : slot.walStatus === 'lost'
          ? `replication slot "${config.slot}" lost the WAL it needed (max_slot_wal_keep_size)`
          : slot.confirmedFlushLsn === null || slot.confirmedFlushLsn > stored
            ? `replication slot "${config.slot}" was acknowledged past the stored position ${storedText} (${slot.confirmedFlushLsn === null ? 'unknown' : formatLsn(slot.confirmedFlushLsn)}): it was used by another reader`
            : null;
    if (why !== null) {
      log.warn({ lsn: storedText }, `${why}: re-reading every table, diffed against the stored state`);
      return { kind: 'resnapshot' };
    }
    const storedFingerprints = cp!.fingerprints();
    const reread = [...fingerprints].filter(([source, fp]) => storedFingerprints[source] !== fp).map(([source]) => source);
    // A table whose paths use columns outside its key needs its row index, stored with the state.
    // One not complete there (a store from before row indexes were kept, or a read cut short) is
    // rebuilt from the stored topics, or, when a key column is not in the value, by reading the table.
    for (const m of mappers) {
      if (m.rowIndex === null || m.rowIndex.complete || reread.includes(m.source)) continue;
      log.info({ table: m.name }, 'rebuilding the stored row index of the table from its stored topics');
      const restored = await m.restoreIndex(cp!.topicsOf(m.source, m.spec.template.selector), (rows) => applyToSink(this.sink, [], undefined, rows), this.abort.signal);
      if (!restored) reread.push(m.source);
    }
    const gone = ownSources(storedFingerprints).filter((source) => !fingerprints.has(source));
    return { kind: 'resume', lsn: stored, reread, gone };
  }

  /**
   * Reads `mappers` through a slot's exported snapshot and returns the slot's consistent point.
   * The main slot is dropped and created again; a `temporary` one leaves it in place (a re-read
   * of some tables). Through `resync` the rows are diffed against the state and applied in one
   * step; without it (nothing held yet) each batch is applied as it is read. A lost connection
   * or a Postgres restart starts the read over in a new snapshot, with backoff, until it
   * succeeds or the connector is stopped; a retry is always diffed.
   */
  private async readSnapshot(
    mappers: readonly TableMapper[],
    serverVersionNum: number,
    how: { temporary: boolean; resync: SourceCheckpoints | null; position: boolean; database?: string; detail?: string },
  ): Promise<Lsn> {
    const { config, log, target } = this;
    const backoff = new Backoff({ ...this.reconnect, stableMs: Number.MAX_SAFE_INTEGER });
    const sources = [...new Set(mappers.map((m) => m.source))];
    for (let attempt = 1; ; attempt++) {
      let meta: pg.Client | null = null;
      let repl: pg.Client | null = null;
      let resync: Resync | null = null;
      let doing = 'connecting';
      try {
        meta = await this.open('query');
        if (!how.temporary) {
          doing = 'preparing the replication slot';
          await dropSlotWhenFree(meta, { slot: config.slot, database: how.database!, busyTimeoutMs: this.slotBusyTimeoutMs, log, target, signal: this.abort.signal });
        }
        doing = 'creating the replication slot';
        repl = await this.open('replication');
        const name = how.temporary ? `${config.slot}_reread_${process.pid}`.slice(0, 63) : config.slot;
        const slot = await createSlotWithSnapshot(repl, name, serverVersionNum, target, how.temporary);
        log.info({ lsn: formatLsn(slot.consistentPoint), temporary: how.temporary }, 'created replication slot with an exported snapshot');
        this.throwIfStopping();
        this.lifecycle.transition('snapshotting', `${how.detail ?? `reading ${mappers.length} table(s)`} at ${formatLsn(slot.consistentPoint)}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
        doing = 'taking the snapshot';
        const started = Date.now();
        const diffed = how.resync ?? (attempt > 1 ? this.options.checkpoints ?? null : null);
        resync = diffed ? diffed.resync(sources) : null;
        const into = resync;
        this.snapshot = new SnapshotSource({
          client: meta,
          snapshotName: slot.snapshotName,
          tables: mappers,
          batchRows: config.snapshotBatchRows,
          sink: into ? { apply: async (updates, _position, rows) => into.take(updates, rows), removeSource: () => Promise.resolve() } : this.sink,
          log,
          target,
          onProgress: this.options.onSnapshotProgress,
        });
        await this.snapshot.run();
        const rows = this.snapshot.tables.reduce((n, t) => n + t.rows, 0);
        const position = how.position ? { name: POSITION_NAME, position: formatLsn(slot.consistentPoint) } : undefined;
        if (into) {
          const { changed, removed } = await into.finish(position);
          log.info({ rows, changed, removed }, 'snapshot diffed against the stored state: only what differs was sent');
        } else if (position && this.options.checkpoints) {
          await this.sink.apply([], position);
        }
        // Stored after what the read applied: a crash before leaves the index incomplete, the table re-read.
        for (const m of mappers) m.readApplied();
        const ms = Date.now() - started;
        log.info({ rows, ms, rowsPerSecond: Math.round((rows * 1000) / Math.max(1, ms)) }, 'snapshot applied');
        return slot.consistentPoint;
      } catch (err) {
        resync?.abort();
        const error = err instanceof TidewireError ? err : toConnectorError(err, doing, target);
        if (this.stopping || !error.retriable) throw error;
        const delay = backoff.next();
        log.warn({ err: error, attempt, delayMs: delay }, 'the snapshot was interrupted: starting it over in a new snapshot');
        this.lifecycle.transition('degraded', `the snapshot was interrupted (${error.message}); attempt ${attempt + 1} in ${delay} ms`);
        await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => {});
        this.throwIfStopping();
      } finally {
        // The exported snapshot lives only as long as the connection that created the slot (and a temporary slot with it).
        await this.close(repl);
        await this.close(meta);
      }
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

  /** A stored LSN is written only once a snapshot has been applied whole: without one, what is stored is a part. */
  holdsCompleteState(): boolean {
    const cp = this.options.checkpoints;
    return !cp || cp.stored(POSITION_NAME) !== null;
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
      startedBy: this.startedBy,
    };
  }

  /** stop() may run while start() awaits; start() must not go on to open a stream after it. */
  private throwIfStopping(): void {
    if (this.stopping) throw new PostgresConnectorError('PG_STOPPED', 'the connector was stopped while starting');
  }

  private transitionUnlessStopping(to: SourceState, detail?: string): void {
    if (!this.stopping) this.lifecycle.transition(to, detail);
  }

  /** `retries`: for the first connection of a start (postgres.connectRetries); later ones have their own retry loops. */
  private async open(kind: 'query' | 'replication', retries = 0): Promise<pg.Client> {
    const client = await openClientWithRetry(clientConfig(this.config.url, kind), this.target, this.log, { retries, backoff: this.reconnect, signal: this.abort.signal });
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
    connectRetries: config.connectRetries ?? DEFAULT_CONNECT_RETRIES,
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

/**
 * The replication stream: one LogicalReplicationService connection at a time, messages handed in
 * order to the TransactionApplier, the applied position acknowledged, and a reconnect with
 * backoff whenever the connection drops, resuming from the last durable LSN.
 *
 * Measured pitfalls of pg-logical-replication 2.5.0 this file works around:
 * - its acknowledge timer acks LSNs received but not yet processed (data loss on a crash), so it
 *   runs with `acknowledge: { auto: false, timeoutSeconds: 0 }` and we send status ourselves;
 * - its acknowledge() adds 1 to the LSN (see standby-status.ts);
 * - it emits 'data' without waiting for async handlers, so messages go through our own queue,
 *   and the socket is paused when that queue grows (backpressure).
 */
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import { type BackoffOptions, backoffDelay } from './backoff.ts';
import { settleWithin } from './connection.ts';
import { PostgresConnectorError, toConnectorError } from './errors.ts';
import { type Lsn, formatLsn, parseLsn } from './lsn.ts';
import { type PgoutputMessage, RawTextPgoutputPlugin } from './pgoutput-plugin.ts';
import { encodeStandbyStatus } from './standby-status.ts';
import type { TransactionApplier } from './transaction-applier.ts';

/** Queued messages at which the socket is paused, and at which it resumes. */
const HIGH_WATER = 20_000;
const LOW_WATER = 5_000;
const CLOSE_TIMEOUT_MS = 5_000;

export interface LivenessOptions {
  /** Silence after which our status update asks the server to answer. */
  readonly pingAfterMs: number;
  /** Silence after which the connection is considered dead and replaced. */
  readonly timeoutMs: number;
}

export const DEFAULT_LIVENESS: LivenessOptions = { pingAfterMs: 10_000, timeoutMs: 30_000 };

export interface StreamOptions {
  /** Client config for the replication connection (replication: 'database'). */
  readonly connection: pg.ClientConfig;
  readonly slot: string;
  readonly publication: string;
  readonly statusIntervalMs: number;
  readonly reconnect: BackoffOptions;
  readonly liveness?: LivenessOptions;
  readonly applier: TransactionApplier;
  readonly log: Logger;
  /** host:port/db, for messages. */
  readonly target: string;
  /** Streaming (again): Postgres accepted START_REPLICATION. */
  readonly onStreaming: () => void;
  /** The connection dropped; reconnecting. */
  readonly onDegraded: (detail: string, error: PostgresConnectorError) => void;
  /** Streaming cannot continue (slot gone, sink refused, schema change the mapping cannot follow). */
  readonly onFailed: (error: PostgresConnectorError) => void;
}

type Item = { readonly msg: PgoutputMessage; readonly walEnd: null } | { readonly msg: null; readonly walEnd: Lsn };

interface PgConnection {
  stream: { pause(): void; resume(): void; destroy(): void; writable: boolean };
  sendCopyFromChunk(chunk: Buffer): void;
}

/** One replication connection's queue and flow control. */
class Session {
  started = false;
  closed = false;
  paused = false;
  lastReceivedAt = Date.now();
  connection: PgConnection | null = null;
  processed: Promise<PostgresConnectorError | null> = Promise.resolve(null);
  private items: Item[] = [];
  private head = 0;
  private waiter: (() => void) | null = null;

  /** @param onFlow told when reading from the socket pauses (queue full) and resumes. */
  constructor(private readonly onFlow: (paused: boolean, queued: number) => void) {}

  attach(client: pg.Client): void {
    this.connection = (client as unknown as { connection: PgConnection }).connection;
  }

  push(item: Item): void {
    if (this.closed) return;
    this.items.push(item);
    this.lastReceivedAt = Date.now();
    if (!this.paused && this.items.length - this.head > HIGH_WATER && this.connection) {
      this.paused = true;
      this.connection.stream.pause();
      this.onFlow(true, this.items.length - this.head);
    }
    this.wake();
  }

  /** Messages received and not yet applied. */
  get length(): number {
    return this.items.length - this.head;
  }

  take(): Item | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.paused && this.items.length - this.head < LOW_WATER) {
      this.paused = false;
      this.lastReceivedAt = Date.now();
      this.connection?.stream.resume();
      this.onFlow(false, this.items.length - this.head);
    }
    return item;
  }

  wait(): Promise<void> {
    return new Promise((resolve) => (this.waiter = resolve));
  }

  close(): void {
    this.closed = true;
    this.items = [];
    this.head = 0;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

export class StreamSource {
  /** The last position reported to Postgres. */
  lastAckedLsn: Lsn = 0n;
  reconnects = 0;

  private stopping = false;
  private session: Session | null = null;
  private service: LogicalReplicationService | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly sleeper = new AbortController();
  private readonly liveness: LivenessOptions;

  constructor(private readonly options: StreamOptions) {
    this.liveness = options.liveness ?? DEFAULT_LIVENESS;
  }

  /** Messages received from Postgres and not yet applied (reads pause past 20 000). */
  get queued(): number {
    return this.session?.length ?? 0;
  }

  /**
   * Resolves once Postgres streams; rejects if streaming cannot start at all. After that,
   * connection losses are handled here (onDegraded, then onStreaming again, or onFailed).
   */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      this.loopDone = this.loop(
        () => {
          if (!settled) (settled = true), resolve();
        },
        (err) => {
          if (!settled) (settled = true), reject(err);
        },
      );
    });
  }

  /** Finishes the message being applied, reports the final position, closes the connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sleeper.abort();
    const session = this.session;
    if (session) {
      session.close();
      await session.processed;
      if (session.started) this.sendStatus(session, false);
      if (this.service) await this.closeService(this.service);
    }
    await this.loopDone;
  }

  private async loop(onStarted: () => void, onFatal: (err: PostgresConnectorError) => void): Promise<void> {
    const { log, reconnect } = this.options;
    let attempt = 0;
    while (!this.stopping) {
      const failure = await this.connectOnce(() => {
        attempt = 0;
        this.options.onStreaming();
        onStarted();
      });
      if (this.stopping || !failure) break;
      if (!failure.retriable) {
        log.error({ err: failure, code: failure.code }, 'replication stopped: cannot continue');
        this.options.onFailed(failure);
        onFatal(failure);
        return;
      }
      const delay = backoffDelay(attempt++, reconnect);
      this.reconnects++;
      const from = formatLsn(this.options.applier.durableLsn);
      log.warn({ lsn: from, delayMs: delay, attempt, err: failure }, 'replication connection lost; reconnecting');
      this.options.onDegraded(`replication connection lost (${failure.message}); reconnect attempt ${attempt} in ${delay} ms, resuming at ${from}`, failure);
      try {
        await sleep(delay, undefined, { signal: this.sleeper.signal });
      } catch {
        // aborted by stop()
      }
    }
    onFatal(new PostgresConnectorError('PG_STOPPED', 'the connector was stopped before streaming began'));
  }

  /** One connection, from connect to close. Returns why it ended (null when stopped). */
  private async connectOnce(onStarted: () => void): Promise<PostgresConnectorError | null> {
    const { applier, log, slot } = this.options;
    const session = new Session((paused, queued) =>
      log.debug({ queued }, paused ? 'sink slower than the stream: pausing reads from Postgres' : 'resuming reads from Postgres'),
    );
    this.session = session;
    applier.beginConnection();
    const service = new LogicalReplicationService(this.options.connection, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    this.service = service;
    let emitted: unknown = null;
    service.on('error', (err) => {
      emitted ??= err;
    });
    service.on('data', (_lsn: string, msg: PgoutputMessage) => session.push({ msg, walEnd: null }));
    service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => {
      session.push({ msg: null, walEnd: parseLsn(lsn) });
      if (shouldRespond) this.sendStatus(session, false);
    });
    service.on('start', () => {
      session.started = true;
      session.lastReceivedAt = Date.now();
      log.info({ lsn: formatLsn(applier.durableLsn) }, 'streaming changes');
      this.sendStatus(session, false);
      onStarted();
    });
    const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [this.options.publication] }, (client) => session.attach(client));
    session.processed = this.process(session, () => void this.closeService(service));
    const timer = setInterval(() => this.tick(session), this.options.statusIntervalMs);
    let ended: unknown = null;
    try {
      await service.subscribe(plugin, slot, formatLsn(applier.durableLsn));
    } catch (err) {
      ended = err;
    }
    clearInterval(timer);
    session.close();
    const failure = await session.processed;
    await this.closeService(service);
    if (failure) return failure;
    if (this.stopping) return null;
    return toConnectorError(ended ?? emitted ?? new Error('the server ended the replication stream'), 'streaming changes', this.options.target, 'stream');
  }

  /** Applies queued messages in order until the session closes; returns a fatal error, if any. */
  private async process(session: Session, abort: () => void): Promise<PostgresConnectorError | null> {
    const applier = this.options.applier;
    try {
      while (!session.closed) {
        const item = session.take();
        if (item === undefined) {
          await session.wait();
        } else if (item.msg !== null) {
          const pending = applier.handle(item.msg);
          if (pending) await pending;
        } else {
          applier.keepalive(item.walEnd);
        }
      }
      return null;
    } catch (err) {
      abort();
      return err instanceof PostgresConnectorError
        ? err
        : new PostgresConnectorError('PG_PROTOCOL', `could not apply a replication message: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  private tick(session: Session): void {
    if (!session.started || session.closed) return;
    const silentMs = Date.now() - session.lastReceivedAt;
    if (!session.paused && silentMs > this.liveness.timeoutMs) {
      this.options.log.warn({ silentMs }, 'no message from Postgres: replacing the replication connection');
      session.connection?.stream.destroy();
      return;
    }
    this.sendStatus(session, !session.paused && silentMs > this.liveness.pingAfterMs);
  }

  private sendStatus(session: Session, replyRequested: boolean): void {
    const conn = session.connection;
    if (!session.started || !conn || !conn.stream.writable) return;
    const lsn = this.options.applier.durableLsn;
    conn.sendCopyFromChunk(encodeStandbyStatus(lsn, Date.now(), replyRequested));
    if (lsn !== this.lastAckedLsn) {
      this.lastAckedLsn = lsn;
      this.options.log.debug({ lsn: formatLsn(lsn) }, 'acknowledged');
    }
  }

  private closeService(service: LogicalReplicationService): Promise<void> {
    return settleWithin(service.stop(), CLOSE_TIMEOUT_MS);
  }
}

/**
 * The replication stream: one ReplicationConnection at a time, messages handed in order to the
 * TransactionApplier, the applied position acknowledged, and a reconnect with backoff whenever
 * the connection drops, resuming from the last durable LSN.
 *
 * Acknowledgement: status updates report `applier.durableLsn` only, the end of the last
 * transaction the sink applied (never a position merely received) and, with durable state, only
 * once `checkpoint` said the state covering it is on disk. Reading is decoupled from
 * applying by a queue counted in wire bytes: past `queueBytes` the connection is paused (the
 * socket stops being read, TCP pushes back on the walsender) until the queue drains to a quarter.
 */
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { Backoff, type BackoffOptions } from '../../core/backoff.ts';
import { PostgresConnectorError, toConnectorError } from './errors.ts';
import { type Lsn, formatLsn } from './lsn.ts';
import type { PgoutputMessage } from './pgoutput-reader.ts';
import { ReplicationConnection, type ReplicationHandlers } from './replication-connection.ts';
import type { TransactionApplier } from './transaction-applier.ts';

/** Wire bytes of received, unapplied messages at which reading pauses (it resumes at a quarter). */
export const DEFAULT_QUEUE_BYTES = 8 * 1024 * 1024;
/** What the CopyBoth stream itself buffers before it stops reading the socket. */
const READ_BUFFER_BYTES = 64 * 1024;
/** A keepalive's size on the wire, for the queue's byte count. */
const KEEPALIVE_BYTES = 18;
const CLOSE_TIMEOUT_MS = 5_000;
/** A stream that held this long counts as stable: the next loss reconnects after the shortest delay. */
const STABLE_MS = 10_000;

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
  /** Wire bytes of received, unapplied messages at which reading pauses. Default 8 MiB. */
  readonly queueBytes?: number;
  readonly applier: TransactionApplier;
  /**
   * With durable state: resolves once the state covering everything applied up to `lsn` is
   * durable; only then is `lsn` acknowledged. Absent: applied is acknowledged (state in memory).
   */
  readonly checkpoint?: (lsn: Lsn) => Promise<void>;
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

/** A queued item: a pgoutput message, or the WAL end of a keepalive (an Lsn). */
type Item = PgoutputMessage | Lsn;

/** One replication connection's queue and flow control. */
class Session {
  started = false;
  closed = false;
  paused = false;
  lastReceivedAt = Date.now();
  connection: ReplicationConnection | null = null;
  processed: Promise<PostgresConnectorError | null> = Promise.resolve(null);
  /** Wire bytes of the queued items. */
  bytes = 0;
  private items: Item[] = [];
  private sizes: number[] = [];
  private head = 0;
  private waiter: (() => void) | null = null;

  /** @param onFlow told when reading from the socket pauses (queue full) and resumes. */
  constructor(
    private readonly highWater: number,
    private readonly onFlow: (paused: boolean, queuedBytes: number, queued: number) => void,
  ) {}

  push(item: Item, size: number): void {
    if (this.closed) return;
    this.items.push(item);
    this.sizes.push(size);
    this.bytes += size;
    this.lastReceivedAt = Date.now();
    if (!this.paused && this.bytes > this.highWater && this.connection) {
      this.paused = true;
      this.connection.pause();
      this.onFlow(true, this.bytes, this.length);
    }
    this.wake();
  }

  /** Messages received and not yet applied. */
  get length(): number {
    return this.items.length - this.head;
  }

  take(): Item | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.bytes -= this.sizes[this.head];
    this.head++;
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
    if (this.paused && this.bytes < this.highWater / 4) {
      this.paused = false;
      this.lastReceivedAt = Date.now();
      this.connection?.resume();
      this.onFlow(false, this.bytes, this.length);
    }
    return item;
  }

  wait(): Promise<void> {
    return new Promise((resolve) => (this.waiter = resolve));
  }

  close(): void {
    this.closed = true;
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
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
  private loopDone: Promise<void> = Promise.resolve();
  private readonly sleeper = new AbortController();
  private readonly liveness: LivenessOptions;
  private readonly queueBytes: number;
  /** With durable state: the applied position known durable (what may be acknowledged). */
  private checkpointed: Lsn;
  private checkpointing = false;

  constructor(private readonly options: StreamOptions) {
    this.checkpointed = options.applier.durableLsn;
    this.liveness = options.liveness ?? DEFAULT_LIVENESS;
    this.queueBytes = options.queueBytes ?? DEFAULT_QUEUE_BYTES;
    if (!(Number.isInteger(this.queueBytes) && this.queueBytes >= 1)) throw new RangeError('StreamSource: queueBytes must be a positive integer');
  }

  /** Messages received from Postgres and not yet applied. */
  get queued(): number {
    return this.session?.length ?? 0;
  }

  /** Wire bytes of those messages (reads pause past `queueBytes`). */
  get queuedBytes(): number {
    return this.session?.bytes ?? 0;
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
      await this.closeConnection(session);
    }
    await this.loopDone;
  }

  private async loop(onStarted: () => void, onFatal: (err: PostgresConnectorError) => void): Promise<void> {
    const { log, reconnect } = this.options;
    // A stream dropped right after it started (a server that accepts and then fails) keeps
    // backing off; one that held for STABLE_MS starts over from the first delay.
    const backoff = new Backoff({ ...reconnect, stableMs: STABLE_MS });
    while (!this.stopping) {
      const failure = await this.connectOnce(() => {
        backoff.connected();
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
      const delay = backoff.next();
      const attempt = backoff.attempts;
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
    const { applier, log, slot, publication, target } = this.options;
    const session = new Session(this.queueBytes, (paused, queuedBytes, queued) =>
      log.debug({ queuedBytes, queued }, paused ? 'sink slower than the stream: pausing reads from Postgres' : 'resuming reads from Postgres'),
    );
    this.session = session;
    applier.beginConnection();
    let conn: ReplicationConnection;
    try {
      conn = await ReplicationConnection.open(this.options.connection, target, log);
    } catch (err) {
      return this.stopping ? null : toConnectorError(err, 'streaming changes', target, 'stream');
    }
    session.connection = conn;
    if (this.stopping || session.closed) {
      await conn.close();
      return null;
    }
    const handlers: ReplicationHandlers = {
      message: (msg, bytes) => session.push(msg, bytes),
      keepalive: (walEnd, replyRequested) => {
        session.push(walEnd, KEEPALIVE_BYTES);
        if (replyRequested) this.sendStatus(session, false);
      },
      // Applied in order like any message: the applier stops the stream with PG_PROTOCOL.
      malformed: (error) => session.push({ tag: 'parse-failure', error }, 0),
    };
    session.processed = this.process(session, () => void conn.close(null, CLOSE_TIMEOUT_MS));
    const timer = setInterval(() => this.tick(session), this.options.statusIntervalMs);
    let ended: unknown = null;
    try {
      const startLsn = applier.durableLsn;
      await conn.start({ slot, publication, startLsn, readBufferBytes: READ_BUFFER_BYTES }, handlers, startLsn);
      session.started = true;
      session.lastReceivedAt = Date.now();
      this.lastAckedLsn = startLsn;
      log.info({ lsn: formatLsn(startLsn) }, 'streaming changes');
      onStarted();
      ended = await conn.ended;
    } catch (err) {
      ended = err;
    }
    clearInterval(timer);
    session.close();
    const failure = await session.processed;
    await conn.close(null, CLOSE_TIMEOUT_MS);
    if (failure) return failure;
    if (this.stopping) return null;
    return toConnectorError(ended ?? new Error('the server ended the replication stream'), 'streaming changes', target, 'stream');
  }

  /** Applies queued messages in order until the session closes; returns a fatal error, if any. */
  private async process(session: Session, abort: () => void): Promise<PostgresConnectorError | null> {
    const applier = this.options.applier;
    try {
      while (!session.closed) {
        const item = session.take();
        if (item === undefined) {
          await session.wait();
        } else if (typeof item === 'bigint') {
          applier.keepalive(item);
        } else {
          const pending = applier.handle(item);
          if (pending) await pending;
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
      session.connection?.destroy();
      return;
    }
    this.sendStatus(session, !session.paused && silentMs > this.liveness.pingAfterMs);
  }

  private sendStatus(session: Session, replyRequested: boolean): void {
    const conn = session.connection;
    if (!session.started || !conn) return;
    const lsn = this.ackable();
    if (!conn.sendStatus(lsn, replyRequested)) return;
    this.noteAcked(lsn);
  }

  /**
   * The position that may be acknowledged now. With durable state it trails the applied one by a
   * checkpoint: one is started whenever the applied position moved, and the next status update
   * reports it once it is durable.
   */
  private ackable(): Lsn {
    const { applier, checkpoint, log } = this.options;
    const applied = applier.durableLsn;
    if (!checkpoint) return applied;
    if (applied > this.checkpointed && !this.checkpointing) {
      this.checkpointing = true;
      checkpoint(applied).then(
        () => {
          if (applied > this.checkpointed) this.checkpointed = applied;
          this.checkpointing = false;
        },
        (err: unknown) => {
          // Nothing past the durable position is acknowledged; ingest fails on its next write.
          this.checkpointing = false;
          log.error({ err, lsn: formatLsn(applied) }, 'the state could not be made durable: not acknowledging past the last durable position');
        },
      );
    }
    return this.checkpointed;
  }

  /** On stop: the final position as the last status update, then the connection closed. */
  private async closeConnection(session: Session): Promise<void> {
    const conn = session.connection;
    if (!conn) return;
    const { applier, checkpoint } = this.options;
    if (checkpoint && session.started) {
      const applied = applier.durableLsn;
      try {
        await checkpoint(applied);
        if (applied > this.checkpointed) this.checkpointed = applied;
      } catch {
        // logged by ackable's path or the sink; the last durable position is what is reported
      }
    }
    const lsn = this.ackable();
    await conn.close(session.started ? lsn : null, CLOSE_TIMEOUT_MS);
    if (session.started) this.noteAcked(lsn);
  }

  private noteAcked(lsn: Lsn): void {
    if (lsn !== this.lastAckedLsn) {
      this.lastAckedLsn = lsn;
      this.options.log.debug({ lsn: formatLsn(lsn) }, 'acknowledged');
    }
  }
}

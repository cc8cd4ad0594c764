/**
 * One replication connection: START_REPLICATION ... LOGICAL over pg's public API, its CopyBoth
 * stream read through pg-copy-streams (`both()`, a pg Submittable made for replication), the
 * XLogData ('w') and primary keepalive ('k') frames inside it decoded here, and Standby Status
 * Updates ('r') written back. No private method or field of pg is touched: the socket is ours
 * (pg's `stream` option, see connection.ts), flow control is the CopyBoth stream's pause().
 * https://www.postgresql.org/docs/current/protocol-replication.html
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import { type CopyBothQueryStream, both } from 'pg-copy-streams';
import { closeClient, destroyClient, openClient } from './connection.ts';
import { type Lsn, formatLsn } from './lsn.ts';
import { type PgoutputMessage, PgoutputReader } from './pgoutput-reader.ts';
import { encodeStandbyStatus } from './standby-status.ts';

/** First byte of a CopyData message on a replication connection. */
export const ReplicationTag = {
  /** XLogData: walStart(8) walEnd(8) sendTime(8), then one pgoutput message. */
  XLogData: 0x77, // w
  /** Primary keepalive: walEnd(8) sendTime(8) replyRequested(1). */
  Keepalive: 0x6b, // k
} as const;

const XLOGDATA_HEADER = 25;
const KEEPALIVE_SIZE = 18;

export interface ReplicationHandlers {
  /** A decoded pgoutput message; `bytes` is the size of its CopyData payload. */
  readonly message: (msg: PgoutputMessage, bytes: number) => void;
  /** A primary keepalive carrying the server's WAL end; answer at once when `replyRequested`. */
  readonly keepalive: (walEnd: Lsn, replyRequested: boolean) => void;
  /** A frame that is neither XLogData nor keepalive, or one too short to read: the stream is closed. */
  readonly malformed: (error: Error) => void;
}

/**
 * Reads the CopyData payloads of a replication stream (one per call, as pg-copy-streams delivers
 * them with `alignOnCopyDataFrame`) into `handlers`. Kept apart from the socket so it is tested
 * with hand-built frames.
 */
export class ReplicationFrameReader {
  private readonly pgoutput = new PgoutputReader();

  constructor(private readonly handlers: ReplicationHandlers) {}

  read(frame: Buffer): void {
    const tag = frame.length > 0 ? frame[0] : -1;
    if (tag === ReplicationTag.XLogData && frame.length > XLOGDATA_HEADER) {
      this.handlers.message(this.pgoutput.read(frame, XLOGDATA_HEADER), frame.length);
    } else if (tag === ReplicationTag.Keepalive && frame.length >= KEEPALIVE_SIZE) {
      this.handlers.keepalive(frame.readBigUInt64BE(1), frame[17] !== 0);
    } else {
      const what = tag < 0 ? 'an empty CopyData message' : `a CopyData message of ${frame.length} bytes starting with 0x${tag.toString(16)}`;
      this.handlers.malformed(new Error(`the replication stream sent ${what}, neither XLogData nor a keepalive`));
    }
  }
}

export interface StartOptions {
  readonly slot: string;
  readonly publication: string;
  readonly startLsn: Lsn;
  /** Bytes the CopyBoth stream buffers before it stops reading the socket. */
  readonly readBufferBytes: number;
}

/**
 * @example
 * const conn = await ReplicationConnection.open(clientConfig(url, 'replication'), target, log);
 * conn.ended.then((err) => ...);      // why it ended: a server error, a socket error, or null
 * await conn.start({ slot, publication, startLsn, readBufferBytes }, handlers, lsn);
 * conn.sendStatus(applied, false);    // acknowledge what is durably applied
 * await conn.close();
 */
export class ReplicationConnection {
  /** Resolves once the stream ended, with the reason (null when closed by us). Never rejects. */
  readonly ended: Promise<unknown>;
  private copy: CopyBothQueryStream | null = null;
  private finish!: (why: unknown) => void;
  private closing: Promise<void> | null = null;
  private done = false;

  private constructor(private readonly client: pg.Client) {
    this.ended = new Promise((resolve) => (this.finish = resolve));
    client.on('error', (err) => this.end(err));
    client.on('end', () => this.end(new Error('the server closed the replication connection')));
  }

  /** Connects (the client config must carry `replication: 'database'`, see connection.ts). */
  static async open(config: pg.ClientConfig, target: string, log: Logger): Promise<ReplicationConnection> {
    return new ReplicationConnection(await openClient(config, target, log));
  }

  /**
   * Sends START_REPLICATION and, as the first message of the stream, a status update for
   * `ackLsn`. Resolves once Postgres answered with CopyBothResponse (it is streaming); rejects
   * with the server's error (slot missing, in use, WAL removed).
   */
  start(options: StartOptions, handlers: ReplicationHandlers, ackLsn: Lsn): Promise<void> {
    // Slot and publication names are validated (postgres-connector.ts); quoted anyway. The
    // publication list is parsed as identifiers: quoted, so a mixed-case name keeps its case.
    // No `messages` option: it is off by default, and servers before 14 refuse the name.
    const sql = `START_REPLICATION SLOT "${options.slot}" LOGICAL ${formatLsn(options.startLsn)} (proto_version '1', publication_names '"${options.publication}"')`;
    const copy = both(sql, { alignOnCopyDataFrame: true, readableHighWaterMark: options.readBufferBytes });
    this.copy = copy;
    const frames = new ReplicationFrameReader(handlers);
    return new Promise<void>((resolve, reject) => {
      let started = false;
      copy.on('error', (err) => {
        if (!started) reject(err);
        this.end(err);
      });
      copy.on('end', () => this.end(new Error('the server ended the replication stream')));
      copy.on('data', (frame: Buffer) => frames.read(frame));
      this.client.query(copy);
      // pg-copy-streams holds writes until CopyBothResponse: this one's callback is the start.
      copy.write(encodeStandbyStatus(ackLsn, Date.now(), false), (err) => {
        if (err) return;
        started = true;
        resolve();
      });
      this.ended.then((why) => reject(why ?? new Error('the replication connection was closed before streaming began')));
    });
  }

  /** Reports `lsn` as written, flushed and applied. False when the stream cannot take it (closed). */
  sendStatus(lsn: Lsn, replyRequested: boolean): boolean {
    const copy = this.copy;
    if (copy === null || this.done || !copy.writable) return false;
    copy.write(encodeStandbyStatus(lsn, Date.now(), replyRequested));
    return true;
  }

  /** Stops reading: the CopyBoth stream fills its buffer, then stops reading the socket. */
  pause(): void {
    this.copy?.pause();
  }

  resume(): void {
    this.copy?.resume();
  }

  /** A dead connection (no message within the liveness timeout): drop the socket now. */
  destroy(): void {
    destroyClient(this.client);
  }

  /**
   * Writes `finalLsn` (if given) as the last status update, waits up to `timeoutMs` for it to
   * reach the socket, then closes the connection.
   */
  close(finalLsn: Lsn | null = null, timeoutMs = 5_000): Promise<void> {
    this.closing ??= this.closeOnce(finalLsn, timeoutMs);
    return this.closing;
  }

  private async closeOnce(finalLsn: Lsn | null, timeoutMs: number): Promise<void> {
    const copy = this.copy;
    if (finalLsn !== null && copy !== null && !this.done && copy.writable) {
      const flushed = new Promise<void>((resolve) => copy.write(encodeStandbyStatus(finalLsn, Date.now(), false), () => resolve()));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([flushed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    }
    this.end(null);
    // pg ends a client with a query in progress (our CopyBoth) by destroying its socket.
    await closeClient(this.client, timeoutMs);
  }

  private end(why: unknown): void {
    if (this.done) return;
    this.done = true;
    this.finish(this.closing !== null ? null : why);
  }
}

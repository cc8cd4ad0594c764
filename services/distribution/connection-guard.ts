/**
 * Connections that have not finished their first request or WebSocket handshake ("pending"):
 * each gets an absolute deadline (server.handshakeTimeoutMs) after which its socket is destroyed,
 * one remote address may hold at most server.maxPendingConnectionsPerAddress of them (more are
 * destroyed at once), and past server.maxPendingConnections the oldest is destroyed to make room.
 * They need no token and count against no tenant, so without these bounds a client that opens
 * sockets and never finishes a request holds descriptors until the process has none left
 * (issue #13: 700 such sockets under a descriptor limit of 600 locked every tenant out).
 *
 * Destroyed, never ended: an HTTP server's sockets allow half-open connections, so `end()` would
 * wait for a client that never closes.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { PendingCloseReason } from './stats.ts';

export interface ConnectionLimits {
  readonly handshakeTimeoutMs: number;
  readonly maxPendingConnections: number;
  readonly maxPendingConnectionsPerAddress: number;
}

/** At most one warning per reason in this interval; the next one says how many were not logged. */
const WARN_INTERVAL_MS = 10_000;

interface Pending {
  readonly address: string;
  readonly timer: NodeJS.Timeout;
}

export class ConnectionGuard {
  /** Insertion order is age order: the first entry is the oldest pending connection. */
  private readonly pending = new Map<Socket, Pending>();
  private readonly perAddress = new Map<string, number>();
  private readonly lastWarn = new Map<PendingCloseReason, number>();
  private readonly unlogged = new Map<PendingCloseReason, number>();

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly closed: Record<PendingCloseReason, number>,
    private readonly logger: Logger,
  ) {}

  /** Connections that have not finished their first request or handshake. */
  get size(): number {
    return this.pending.size;
  }

  /** A new TCP connection: pending until settled(), destroyed at its deadline. */
  admit(socket: Socket): void {
    const address = socket.remoteAddress ?? '?';
    const held = this.perAddress.get(address) ?? 0;
    if (held >= this.limits.maxPendingConnectionsPerAddress) {
      this.close(socket, 'addressLimit', { address, limit: this.limits.maxPendingConnectionsPerAddress },
        `${address} has server.maxPendingConnectionsPerAddress (${this.limits.maxPendingConnectionsPerAddress}) connections that have not finished their handshake: new ones are closed`);
      return;
    }
    if (this.pending.size >= this.limits.maxPendingConnections) {
      const [oldest] = this.pending.keys();
      const { address: from } = this.pending.get(oldest)!;
      this.close(oldest, 'globalLimit', { address: from, limit: this.limits.maxPendingConnections },
        `server.maxPendingConnections (${this.limits.maxPendingConnections}) connections have not finished their handshake: the oldest is closed for each new one`);
    }
    const timer = setTimeout(() => {
      this.close(socket, 'timeout', { address, timeoutMs: this.limits.handshakeTimeoutMs },
        `a connection did not finish its request or handshake within server.handshakeTimeoutMs (${this.limits.handshakeTimeoutMs} ms): closed`);
    }, this.limits.handshakeTimeoutMs);
    timer.unref();
    this.pending.set(socket, { address, timer });
    this.perAddress.set(address, held + 1);
    socket.once('close', () => this.settled(socket));
  }

  /** The connection finished its first request's headers, or became a WebSocket session. */
  settled(socket: Socket): void {
    const p = this.pending.get(socket);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(socket);
    const left = (this.perAddress.get(p.address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(p.address, left);
    else this.perAddress.delete(p.address);
  }

  /** Destroys every pending connection (at shutdown: nothing is waiting for them). */
  closeAll(): void {
    for (const socket of [...this.pending.keys()]) {
      this.settled(socket);
      socket.destroy();
    }
  }

  private close(socket: Socket, reason: PendingCloseReason, fields: Record<string, unknown>, message: string): void {
    this.settled(socket);
    socket.destroy();
    this.closed[reason]++;
    const now = Date.now();
    const last = this.lastWarn.get(reason);
    if (last !== undefined && now - last < WARN_INTERVAL_MS) {
      this.unlogged.set(reason, (this.unlogged.get(reason) ?? 0) + 1);
      return;
    }
    this.lastWarn.set(reason, now);
    const notLogged = this.unlogged.get(reason) ?? 0;
    this.unlogged.delete(reason);
    this.logger.warn({ reason, ...fields, pending: this.pending.size, closedSinceLastWarning: notLogged }, message);
  }
}

/**
 * The distribution service: one HTTP server carrying the WebSocket endpoint (`/ws`) and the HTTP
 * routes, fed by the hand-off. Every limit comes from DistributionOptions and is enforced per session,
 * so a slow, flooding or malformed client is cut off alone. With a SecurityManager, a handshake
 * must carry a valid token (401 otherwise, before any WebSocket exists), each tenant's
 * connections are counted against its own limit, and a configuration reload re-evaluates every
 * live session.
 */
import { type Server, createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ChangeBatch } from '../../core/topic.ts';
import { type ServerOptions, type WebSocket, WebSocketServer } from 'ws';
import type { Handoff } from '../handoff/handoff.ts';
import { type Principal, type ReloadSummary, type SecurityManager, UNAUTHORIZED_MESSAGE } from '../security/security-manager.ts';
import type { ConnectionLease } from '../security/tenant-connections.ts';
import { FanOut } from './fan-out.ts';
import { FlushScheduler } from './flush-scheduler.ts';
import { type HealthReport, type HttpRoute, WS_PATH, createHttpHandler, rawPath } from './http.ts';
import { ConnectionGuard } from './connection-guard.ts';
import { CloseCode } from '../../core/messages.ts';
import { OriginPolicy, isLoopbackName } from './origin-policy.ts';
import { type DistributionOptions, connectionLimits, sessionLimits, validate } from './server-limits.ts';
import { Session, type SessionHost } from './session.ts';
import type { StaleSources } from './feed-status.ts';
import { StaticFiles } from './static-files.ts';
import { type DisconnectReason, type DistributionStats, type QueueDepth, newStats } from './stats.ts';

export interface DistributionServerOptions {
  logger: Logger;
  /** Reported by GET /health; `failed` answers 503. Default: always ok, no sources. */
  health?: () => HealthReport;
  /** Serve `index.html` at `/` and `assets/*` at `/assets/*` from this folder (the dashboard). */
  staticDir?: string;
  /** WebSocket ping interval; a client that misses a whole interval is dropped. 0 disables. Default 30000. */
  heartbeatIntervalMs?: number;
  /** How long a closing handshake may take before the socket is destroyed. Default 5000. */
  closeTimeoutMs?: number;
  /** Authentication, permissions and tenants. Absent: every client may read every topic (a warning is logged at start). */
  security?: SecurityManager | null;
  /**
   * What `POST /admin/reload` runs. Default: `security.reload()`, which re-reads the security
   * file; a service whose security settings are inline passes a function that re-reads its main
   * configuration and calls `security.reload(settings)`.
   */
  reloadSecurity?: (by: string) => ReloadSummary | Promise<ReloadSummary>;
  /** Extra GET routes on the same HTTP server, by exact path (the service's `/metrics` and `/ready`). */
  routes?: ReadonlyMap<string, HttpRoute>;
}

const DEFAULTS = { heartbeatIntervalMs: 30_000, closeTimeoutMs: 5_000 };

/** How often Node checks kept-alive connections against headersTimeout/requestTimeout (its default, 30 s, would let them linger). */
const TIMEOUT_CHECK_MS = 1_000;

/**
 * @example
 * const server = new DistributionServer(handoff, config.server, { logger });
 * const { port } = await server.listen();
 * // ... ws://host:port/ws, http://host:port/health
 * await server.close();
 */
export class DistributionServer {
  readonly stats: DistributionStats = newStats();
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly fanOut = new FanOut();
  private readonly flusher: FlushScheduler;
  private readonly sessions = new Set<Session>();
  private readonly host: SessionHost;
  private readonly logger: Logger;
  private readonly heartbeatIntervalMs: number;
  private nextSession = 0;
  private closing: Promise<void> | null = null;
  private stopHandoff: (() => void) | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly security: SecurityManager | null;
  private stopReloads: (() => void) | null = null;
  private readonly guard: ConnectionGuard;
  private readonly origins: OriginPolicy;
  private staleSources: StaleSources = new Map();
  private loading = false;
  /** Sessions whose next answer page waits for the end of a hold (see `deliver`). */
  private readonly pagesHeld = new Set<Session>();

  constructor(
    private readonly handoff: Handoff,
    private readonly config: DistributionOptions,
    options: DistributionServerOptions,
  ) {
    validate(config);
    const opts = { ...DEFAULTS, ...stripUndefined(options) };
    this.logger = options.logger;
    this.security = options.security ?? null;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs;
    this.flusher = new FlushScheduler(config.flushIntervalMs);
    this.host = {
      view: handoff.view,
      fanOut: this.fanOut,
      security: this.security,
      stats: this.stats,
      logger: this.logger,
      limits: sessionLimits(config),
      scheduleFlush: (s) => this.flusher.schedule(s),
      sessionEnded: (s, reason) => this.sessionEnded(s, reason),
      staleSources: () => this.staleSources,
      loading: () => this.loading || this.fanOut.continuing,
      holding: () => this.fanOut.continuing,
      holdPages: (s) => this.pagesHeld.add(s),
    };
    // closeTimeout exists since ws 8.19; @types/ws does not list it yet.
    const wsOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      maxPayload: config.maxPayloadBytes,
      // Off on purpose (ANCHORS.md): compression cut throughput from millions to ~10-200k
      // deliveries/s and costs ~156 KB per connection; deltas are the cheaper bandwidth saving.
      perMessageDeflate: false,
      closeTimeout: opts.closeTimeoutMs,
    };
    this.wss = new WebSocketServer(wsOptions);
    const limits = connectionLimits(config);
    this.guard = new ConnectionGuard(limits, this.stats.pendingClosed, this.logger);
    this.origins = new OriginPolicy(config.allowedOrigins, this.security !== null);
    const handler = createHttpHandler({
        view: handoff.view,
        health: options.health ?? (() => ({ status: 'ok', sources: [] })),
        sessionCount: () => this.sessions.size,
        staticFiles: options.staticDir ? new StaticFiles(options.staticDir) : null,
        logger: this.logger,
        security: this.security
          ? { manager: this.security, reload: options.reloadSecurity ?? ((by: string): ReloadSummary => this.security!.reload(undefined, by)) }
          : null,
        routes: options.routes,
      });
    this.http = createServer(
      {
        // The first request is bounded by the guard; these bound the later ones of a kept-alive connection.
        headersTimeout: limits.handshakeTimeoutMs,
        requestTimeout: 2 * limits.handshakeTimeoutMs,
        connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, limits.handshakeTimeoutMs),
      },
      (req, res) => {
        this.guard.settled(req.socket);
        handler(req, res);
      },
    );
    this.http.on('connection', (socket: Socket) => this.guard.admit(socket));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    // Destroyed, not ended: the server's sockets allow half-open connections, and end() would
    // keep the descriptor until a client that never reads closes its side (issue #13).
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Written even mid-response (a bad pipelined request): the socket is destroyed right after anyway.
      if (socket.writable && err.code !== 'ECONNRESET') {
        const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
        socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      }
      socket.destroy();
    });
  }

  /** Connections that have not finished their first request or WebSocket handshake yet. */
  get pendingConnections(): number {
    return this.guard.size;
  }

  /** Live WebSocket sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** What the sessions hold right now: queued messages, merged topics, clients behind (for gauges; O(sessions)). */
  queueDepth(): QueueDepth {
    const depth: QueueDepth = { sessions: this.sessions.size, behind: 0, messages: 0, bytes: 0, conflatedTopics: 0, socketBytes: 0 };
    for (const s of this.sessions) {
      const q = s.queueDepth();
      depth.messages += q.messages;
      depth.bytes += q.bytes;
      depth.conflatedTopics += q.topics;
      depth.socketBytes += q.socketBytes;
      if (q.behind) depth.behind++;
    }
    return depth;
  }

  /**
   * The sources whose feed is stale now (Topic.source → the feed's name, e.g. the Kafka topic),
   * replacing the previous set. Each session gets a `status` for every subscription whose answer
   * changed (docs/PROTOCOL.md, "Feed status").
   */
  /**
   * While true, subscribes wait: topic state is being built for the first time and would answer
   * with a part of a table. Set false once every source has its state complete; the waiting
   * subscribes are then answered, in order, from the complete state.
   */
  setLoading(loading: boolean): void {
    const was = this.loading;
    this.loading = loading;
    if (was && !loading && !this.fanOut.continuing) for (const s of [...this.sessions]) s.stateComplete();
  }

  /**
   * One batch of the hand-off to every subscriber. A batch that says more of its transaction
   * follows (ChangeBatch.continues) starts a hold: nothing is flushed, no subscribe is answered and
   * no answer page is read until the batch that ends the transaction, so every client gets the
   * transaction as one group (in marked parts when it is large) and nobody takes a part of it for
   * a state. A session whose queue fills meanwhile is dropped as any slow one and resumes after.
   * The hold lasts while fan-out is inside such a transaction (FanOut.continuing).
   */
  private deliver(batch: ChangeBatch): void {
    const held = this.fanOut.continuing;
    this.fanOut.deliver(batch);
    if (this.fanOut.continuing) {
      if (!held) this.flusher.hold();
      return;
    }
    if (!held) return;
    this.flusher.release();
    const paged = [...this.pagesHeld];
    this.pagesHeld.clear();
    for (const s of paged) s.resumePages();
    for (const s of [...this.sessions]) {
      s.transactionEnded();
      if (!this.loading) s.stateComplete();
    }
  }

  setStaleSources(stale: StaleSources): void {
    this.staleSources = new Map(stale);
    for (const s of [...this.sessions]) {
      try {
        s.feedStatus();
      } catch (err) {
        s.deliveryFailed(err); // that session's failure alone (1011)
      }
    }
  }

  /** Live subscriptions over every session (for metrics). */
  get subscriptionCount(): number {
    return this.fanOut.size;
  }

  /** Starts listening on config.host:config.port (0 picks a free port) and starts serving the hand-off. */
  listen(): Promise<{ port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.http.once('error', onError);
      this.http.listen(this.config.port, this.config.host, () => {
        this.http.off('error', onError);
        this.http.on('error', (err) => this.logger.error({ err }, 'http server error'));
        this.stopHandoff = this.handoff.subscribe((batch) => this.deliver(batch));
        if (this.security) this.stopReloads = this.security.onReload(() => this.reauthorizeAll());
        else this.logger.warn({}, 'security is off: every client can read every topic; configure `security` to require tokens');
        if (!this.security && !isLoopbackName(this.config.host)) {
          this.logger.warn(
            { host: this.config.host },
            `security is off and the server listens on ${this.config.host}, beyond loopback: anyone who can reach this port reads every topic; configure \`security\`, or listen on 127.0.0.1`,
          );
        }
        if (this.heartbeatIntervalMs > 0) {
          this.heartbeat = setInterval(() => {
            for (const s of this.sessions) s.heartbeat();
          }, this.heartbeatIntervalMs);
          this.heartbeat.unref();
        }
        const address = this.http.address();
        const port = typeof address === 'object' && address ? address.port : this.config.port;
        this.logger.info({ host: this.config.host, port }, 'distribution listening');
        resolve({ port });
      });
    });
  }

  /**
   * Stops accepting connections, sends what is pending, closes every session with 1001 and
   * resolves once every socket is gone (sockets that do not finish the closing handshake are
   * destroyed after closeTimeoutMs).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stopHandoff?.();
    this.stopHandoff = null;
    this.stopReloads?.();
    this.stopReloads = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const httpClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.flusher.flush();
    for (const s of [...this.sessions]) s.close(CloseCode.GOING_AWAY, 'shutdown', 'server shutting down');
    this.flusher.stop();
    this.guard.closeAll();
    this.http.closeIdleConnections();
    const wsClosed = new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await Promise.all([httpClosed, wsClosed]);
    this.logger.info({}, 'distribution closed');
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Not a closure: a listener made here would keep this call's variables, the request with its
    // headers among them, for as long as the connection lives (~1 KiB a session).
    socket.on('error', destroySocket);
    if (rawPath(req.url) !== WS_PATH) {
      refuse(socket, 404, 'Not Found');
      return;
    }
    if (this.closing) {
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    const origin = req.headers.origin;
    if (!this.origins.allows(origin, req.headers.host)) {
      this.logger.info({ origin: origin!.slice(0, 200), remote: remoteOf(req) }, 'WebSocket handshake refused: its Origin is not allowed');
      const message = 'this page\'s origin may not open a session: the server operator can add it to server.allowedOrigins';
      refuseWith(socket, 403, 'Forbidden', { code: 'ORIGIN_NOT_ALLOWED', message });
      return;
    }
    if (!this.security) {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.opened(socket, () => this.accept(ws, req, null)));
      return;
    }
    this.authenticateUpgrade(this.security, req, socket, head).catch((err: unknown) => {
      this.logger.error({ err }, 'handshake authentication failed');
      refuse(socket, 500, 'Internal Server Error');
    });
  }

  /** Authenticates the handshake and takes a tenant connection lease before any WebSocket exists. */
  private async authenticateUpgrade(security: SecurityManager, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const remote = remoteOf(req);
    const result = await security.authenticate(security.tokenFrom(req.headers, req.url), { channel: 'ws', remote });
    if (socket.destroyed) return;
    if (this.closing) {
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    if (!result.ok) {
      refuseWith(socket, 401, 'Unauthorized', { code: 'UNAUTHORIZED', message: UNAUTHORIZED_MESSAGE }, 'WWW-Authenticate: Bearer realm="tidewire"\r\n');
      return;
    }
    const principal = result.principal;
    const limit = security.limitsFor(principal.tenant).connections;
    const lease = security.connections.tryAcquire(principal.tenant, limit);
    if (!lease) {
      security.audit.limitExceeded({ subject: principal.subject, tenant: principal.tenant, remote, limit: 'connections', value: limit });
      const message = `your tenant has ${limit} connections open, its limit: close some, or ask for a higher limit`;
      refuseWith(socket, 429, 'Too Many Requests', { code: 'TENANT_LIMIT', limit: 'connections', message });
      return;
    }
    // The socket may still fail before the upgrade completes: the lease goes back either way.
    // Bound, not a closure over this call's variables (see upgrade).
    socket.once('close', lease.release.bind(lease));
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opened(socket, () => this.accept(ws, req, { principal, lease })));
  }

  /** The handshake is complete: the connection is a session now, no longer bounded by the handshake timeout. */
  private opened(socket: Duplex, accept: () => void): void {
    this.guard.settled(socket as Socket);
    accept();
  }

  private accept(ws: WebSocket, req: IncomingMessage, security: { principal: Principal; lease: ConnectionLease } | null): void {
    if (this.closing) {
      security?.lease.release();
      ws.close(CloseCode.GOING_AWAY, 'server shutting down');
      return;
    }
    const id = (++this.nextSession).toString(36);
    const remote = remoteOf(req);
    this.stats.connections++;
    const session = new Session(id, remote, ws, this.host, security);
    if (!session.closed) this.sessions.add(session);
    if (security) {
      const p = security.principal;
      this.security!.audit.connectionAccepted({
        subject: p.subject, tenant: p.tenant, roles: p.roles, session: id, remote, anonymous: p.anonymous, expiresAt: p.expiresAt,
      });
    }
    this.logger.debug({ session: id, remote }, 'session opened');
  }

  /** A security reload: every live session derives its permissions again and gets the difference. */
  private reauthorizeAll(): void {
    for (const s of [...this.sessions]) s.reauthorize();
  }

  private sessionEnded(session: Session, reason: DisconnectReason): void {
    if (this.sessions.delete(session)) this.stats.disconnects[reason]++;
  }
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

function refuse(socket: Duplex, status: number, text: string): void {
  refuseWith(socket, status, text, { code: status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE', message: `${text}: connect to ${WS_PATH}` });
}

/** Answers a handshake with an HTTP error and a JSON body `{error}`, and destroys the socket once the answer is written. */
function refuseWith(socket: Duplex, status: number, text: string, error: Record<string, string>, headers = ''): void {
  const body = JSON.stringify({ error });
  // end() alone would leave a half-open socket for as long as the client keeps its side open.
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function remoteOf(req: IncomingMessage): string {
  return `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

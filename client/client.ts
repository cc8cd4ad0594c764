/**
 * The tidewire client: one WebSocket connection, any number of subscriptions, topic state kept
 * once per client and updated by deltas, reconnects with backoff and jitter and resumes where it
 * left off. Runs in browsers and in Node (no Node-only import at the top level).
 */
import { type AuthenticatedMessage, type HelloMessage, MAX_RATE, PROTOCOL_VERSION, type ServerMessage } from '../core/messages.ts';
import { SelectorError, parseSelector } from '../core/selector.ts';
import { Backoff, type BackoffOptions } from '../core/backoff.ts';
import { type ConnectionEvent, type ConnectionState, nextState } from './connection-state.ts';
import { TidewireClientError } from './errors.ts';
import { FrameAssembler } from './frame-assembler.ts';
import { FrameError, parseFrame } from './frames.ts';
import { Outbox } from './outbox.ts';
import { type FilterLanguage, type ResumeInfo, type SubscribeOptions, Subscription, type SubscriptionCore, type SubscriptionHandlers } from './subscription.ts';
import { type TokenReason, type TokenSource, refreshDelay, resolveToken, withAccessToken } from './token.ts';
import { TopicSync } from './topic-sync.ts';
import { OPEN, type WebSocketConstructor, type WebSocketLike, resolveWebSocket } from './transport.ts';

/** A connection open this long counts as stable: the next loss reconnects after the shortest delay. */
const STABLE_MS = 5000;
/** Reconnect delays: full jitter under a step of 250 ms doubling up to 10 s (core/backoff.ts). */
const DEFAULT_RECONNECT: BackoffOptions = { initialMs: 250, maxMs: 10_000 };

export interface TidewireClientOptions {
  /** The server's WebSocket endpoint, e.g. `ws://localhost:8080/ws`. */
  url: string;
  /** A WebSocket implementation; default: globalThis.WebSocket, else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
  /**
   * Reconnect backoff: each delay is random between 0 and a step that starts at `initialMs` and
   * doubles after every connection that drops within 5 s, up to `maxMs`. Default 250 ms up to 10 s.
   */
  reconnect?: Partial<BackoffOptions>;
  /** Most messages sent per second (extra ones wait); keep it under the server's limit. Default 100. */
  maxMessagesPerSecond?: number;
  /**
   * A bearer token (JWT), or a function that returns one, for a server with security. Sent as
   * `?access_token=` on the URL; refreshed with an `auth` message at ~80 % of its lifetime (when it
   * is a function); after the server closed the session for an expired token (4001), a fresh one
   * is fetched before reconnecting.
   */
  token?: TokenSource;
  /**
   * The filter language, needed only to subscribe with `filter`: `import { filters } from
   * '@tidewire/client/filter'`. Kept out of the core entry, so apps that do not filter do not ship it.
   */
  filters?: FilterLanguage;
}

/** Why the connection was lost, and when the client tries again. */
export interface DisconnectInfo {
  /** The WebSocket close code (e.g. 4008: the server's send queue for this client was full); null when the connection never opened. */
  readonly code: number | null;
  /** The close reason the server gave ('' when none). */
  readonly reason: string;
  /** Consecutive losses of a connection that did not hold for 5 s (1 for the first). */
  readonly attempt: number;
  /** The reconnect waits this long: random up to a step that doubles with each attempt (core/backoff.ts). */
  readonly retryInMs: number;
}

/** Close code of a session whose token expired (docs/PROTOCOL.md). */
const TOKEN_EXPIRED = 4001;

/**
 * @example
 * const client = new TidewireClient({ url: 'ws://localhost:8080/ws' });
 * client.onState((s) => console.log('connection', s));
 * const orders = client.subscribe('orders/**', {
 *   onValue: (path, value) => console.log(path, value),
 *   onRemoval: (path) => console.log('gone', path),
 * });
 * await client.connect();
 */
export class TidewireClient {
  private current: ConnectionState = 'closed';
  private socket: WebSocketLike | null = null;
  private epochId: string | null = null;
  private readonly backoff: Backoff;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private waiting: { resolve: () => void; reject: (err: Error) => void; promise: Promise<void> } | null = null;
  private readonly sync: TopicSync;
  private readonly outbox: Outbox;
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly errorListeners = new Set<(error: TidewireClientError) => void>();
  private readonly resumeListeners = new Set<(info: ResumeInfo) => void>();
  private readonly disconnectListeners = new Set<(info: DisconnectInfo) => void>();
  private readonly frames = new FrameAssembler();
  /** Why the next token is fetched: the last session ended with 4001 (token expired). */
  private tokenReason: TokenReason = 'connect';
  /** The token of the current connection (or the last one sent with `auth`). */
  private token: string | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private authId = 0;

  constructor(private readonly options: TidewireClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError(`"${options.url}" is not a URL: use e.g. ws://localhost:8080/ws`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`"${options.url}" must be a ws:// or wss:// URL`);
    this.backoff = new Backoff({ ...DEFAULT_RECONNECT, ...options.reconnect, stableMs: STABLE_MS });
    this.outbox = new Outbox(options.maxMessagesPerSecond ?? 100);
    this.sync = new TopicSync({
      send: (m) => this.outbox.send(m),
      error: (e) => this.emitError(e),
      resumed: (info) => this.emitResume(info),
    });
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The server's epoch from the last `hello`; versions are comparable only within one epoch. */
  get epoch(): string | null {
    return this.epochId;
  }

  /**
   * Connects, and keeps reconnecting whenever the connection drops until close() is called.
   * Resolves when the connection is open; rejects only if close() is called first.
   */
  connect(): Promise<void> {
    if (this.current === 'open') return Promise.resolve();
    if (!this.waiting) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.waiting = { resolve, reject, promise };
    }
    if (this.current === 'closed') {
      this.backoff.reset();
      this.transition('connect');
      void this.open();
    }
    return this.waiting.promise;
  }

  /** Closes the connection and stops reconnecting. Subscriptions are kept: connect() again resumes them. */
  close(): void {
    if (this.current === 'closed') return;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.socket;
    this.socket = null;
    this.outbox.detach();
    this.frames.reset();
    this.stopRefresh();
    this.sync.onClose();
    if (ws) ws.close(1000, 'client closed');
    this.transition('close');
    this.waiting?.reject(new TidewireClientError('CONNECTION_FAILED', 'the client was closed before the connection opened'));
    this.waiting = null;
  }

  /**
   * Subscribes to every topic the selector matches (`orders/7/42`, `orders/*\/42`, `orders/**`)
   * and, with `options.filter`, whose value matches the filter; `options.maxRate` caps updates per
   * second per topic. Throws TidewireClientError (INVALID_SELECTOR, FILTER_INVALID,
   * INVALID_MESSAGE for a bad maxRate) for what the server would refuse, and FILTER_UNAVAILABLE for
   * a filter on a client created without `filters` (from '@tidewire/client/filter').
   * @example
   * client.subscribe('orders/**', { onValue: render }, { filter: "status = 'open' and total > 100", maxRate: 2 });
   */
  subscribe(selector: string, handlers: SubscriptionHandlers = {}, options: SubscribeOptions = {}): Subscription {
    let parsed;
    try {
      parsed = parseSelector(selector);
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err;
      throw new TidewireClientError('INVALID_SELECTOR', err.message, { selector: String(selector), cause: err });
    }
    let filter = null;
    if (options.filter !== undefined) {
      const language = this.options.filters;
      if (!language) {
        throw new TidewireClientError('FILTER_UNAVAILABLE', "a filter needs the filter language: import { filters } from '@tidewire/client/filter' and create the client with new TidewireClient({ url, filters })", { selector: String(selector) });
      }
      const compiled = language.compile(options.filter);
      if (compiled.error) throw new TidewireClientError('FILTER_INVALID', compiled.error.message, { selector: String(selector), cause: compiled.error });
      filter = compiled.filter;
    }
    const maxRate = options.maxRate;
    if (maxRate !== undefined && !(typeof maxRate === 'number' && maxRate >= MAX_RATE.min && maxRate <= MAX_RATE.max)) {
      throw new TidewireClientError('INVALID_MESSAGE', `maxRate must be a number of updates per second from ${MAX_RATE.min} to ${MAX_RATE.max}, not ${String(maxRate)}`, { selector: String(selector) });
    }
    const core: SubscriptionCore = {
      selector: parsed, handlers, state: 'pending', wireId: null, paths: new Set(), stale: null, retry: null, filter, maxRate, resuming: null, resumed: null,
    };
    this.sync.add(core);
    return new Subscription(core, this.sync.cache, (c) => this.sync.remove(c));
  }

  /**
   * Calls `listener` each time a subscription is live again after a reconnect, saying whether
   * the resume was exact (only what changed was sent) or not; returns a function that removes it.
   */
  onResume(listener: (info: ResumeInfo) => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  /**
   * Calls `listener` each time the connection is lost (not after close()): the close code and
   * reason, and how long until the next attempt; returns a function that removes it.
   * @example
   * client.onDisconnect(({ code, reason, retryInMs }) => console.log(`closed ${code} ${reason}; retry in ${retryInMs} ms`));
   */
  onDisconnect(listener: (info: DisconnectInfo) => void): () => void {
    this.disconnectListeners.add(listener);
    return () => this.disconnectListeners.delete(listener);
  }

  /** Calls `listener` on every connection state change; returns a function that removes it. */
  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Calls `listener` for every error (connection, server, handler); returns a function that removes it. */
  onError(listener: (error: TidewireClientError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  private async open(): Promise<void> {
    let Ctor: WebSocketConstructor;
    let ws: WebSocketLike;
    try {
      Ctor = await resolveWebSocket(this.options.WebSocket);
      if (this.current === 'closed') return;
      let url = this.options.url;
      if (this.options.token !== undefined) {
        const token = await resolveToken(this.options.token, this.tokenReason);
        if ((this.current as ConnectionState) === 'closed') return;
        this.token = token;
        url = withAccessToken(url, token);
      }
      ws = new Ctor(url);
    } catch (err) {
      this.emitError(new TidewireClientError('CONNECTION_FAILED', `cannot open a WebSocket: ${(err as Error).message}`, { cause: err }));
      this.lost();
      return;
    }
    this.socket = ws;
    ws.onmessage = (ev) => {
      if (this.socket === ws) this.receive(ws, ev.data);
    };
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      // The server ended the session because its token expired: the next connection needs a fresh one.
      this.tokenReason = ev?.code === TOKEN_EXPIRED ? 'expired' : 'connect';
      this.lost(ev ? { code: ev.code, reason: ev.reason ?? '' } : null);
    };
    ws.onerror = () => {
      if (this.socket === ws) this.emitError(new TidewireClientError('CONNECTION_FAILED', `the connection to ${this.options.url} failed`));
    };
  }

  private lost(close: { code: number; reason: string } | null = null): void {
    this.socket = null;
    this.outbox.detach();
    this.frames.reset();
    this.stopRefresh();
    this.sync.onClose();
    if (this.current === 'closed') return;
    this.transition('lost');
    // Back off from the first delay again only after a connection that held: one dropped right
    // after opening (e.g. 4008 on every snapshot) keeps backing off instead of hammering.
    const delay = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
    const info: DisconnectInfo = { code: close?.code ?? null, reason: close?.reason ?? '', attempt: this.backoff.attempts, retryInMs: delay };
    for (const l of this.disconnectListeners) {
      try {
        l(info);
      } catch (err) {
        this.emitError(new TidewireClientError('HANDLER_FAILED', `a disconnect listener threw: ${(err as Error)?.message ?? err}`, { cause: err }));
      }
    }
  }

  private receive(ws: WebSocketLike, data: unknown): void {
    let messages: ServerMessage[] | null;
    try {
      messages = parseFrame(data);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.emitError(new TidewireClientError('PROTOCOL_ERROR', err.message));
      return;
    }
    try {
      messages = this.frames.accept(messages);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.emitError(new TidewireClientError('PROTOCOL_ERROR', err.message));
      // Parts of a group went missing: what the client holds may be torn, fetch it again.
      this.sync.resyncAll();
      return;
    }
    if (messages === null) return; // more parts of a group to come
    const topics: ServerMessage[] = [];
    for (const m of messages) {
      if (this.socket !== ws) return; // a handler closed the client
      if (m.type === 'hello') this.hello(ws, m);
      else if (m.type === 'authenticated') this.authenticated(m);
      else if (m.type !== 'pong' && m.type !== 'txn') topics.push(m);
    }
    // The whole frame (a transaction, every part of a group) is applied before any handler runs.
    if (topics.length > 0 && this.socket === ws) this.sync.handleFrame(topics);
  }

  private hello(ws: WebSocketLike, m: HelloMessage): void {
    if (m.protocol !== PROTOCOL_VERSION) {
      this.emitError(new TidewireClientError('PROTOCOL_ERROR', `the server speaks protocol ${m.protocol}, this client ${PROTOCOL_VERSION}: upgrade the client`));
    }
    this.epochId = m.epoch;
    this.backoff.connected();
    this.tokenReason = 'connect';
    this.outbox.attach({ send: (text) => ws.readyState === OPEN && ws.send(text) });
    this.sync.onOpen(m.maxPayloadBytes === undefined ? { epoch: m.epoch } : { epoch: m.epoch, maxPayloadBytes: m.maxPayloadBytes });
    if (this.token !== null) this.scheduleRefresh(this.token, null);
    this.transition('opened');
    this.waiting?.resolve();
    this.waiting = null;
  }

  /** The server accepted the refreshed token: plan the next refresh from its expiry. */
  private authenticated(m: AuthenticatedMessage): void {
    if (this.token !== null) this.scheduleRefresh(this.token, m.exp);
  }

  /** Refreshes the token over the live connection at ~80 % of its lifetime (only a token function can give a fresh one). */
  private scheduleRefresh(token: string, exp: number | null): void {
    this.stopRefresh();
    const source = this.options.token;
    if (typeof source !== 'function') return;
    const delay = refreshDelay(token, Date.now(), exp ?? undefined);
    if (delay === null) return;
    const ws = this.socket;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void resolveToken(source, 'refresh').then(
        (fresh) => {
          if (this.socket !== ws || ws === null) return;
          this.token = fresh;
          this.outbox.send({ type: 'auth', id: `auth${++this.authId}`, token: fresh });
        },
        (err: unknown) => this.emitError(new TidewireClientError('CONNECTION_FAILED', `the token function failed: ${(err as Error)?.message ?? err}`, { cause: err })),
      );
    }, Math.min(delay, 2 ** 31 - 1));
  }

  private stopRefresh(): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  private transition(event: ConnectionEvent): void {
    const next = nextState(this.current, event);
    if (next === this.current) return;
    this.current = next;
    for (const l of this.stateListeners) {
      try {
        l(next);
      } catch (err) {
        this.emitError(new TidewireClientError('HANDLER_FAILED', `a state listener threw: ${(err as Error)?.message ?? err}`, { cause: err }));
      }
    }
  }

  private emitResume(info: ResumeInfo): void {
    for (const l of this.resumeListeners) {
      try {
        l(info);
      } catch (err) {
        this.emitError(new TidewireClientError('HANDLER_FAILED', `a resume listener threw: ${(err as Error)?.message ?? err}`, { cause: err }));
      }
    }
  }

  private emitError(error: TidewireClientError): void {
    for (const l of this.errorListeners) {
      try {
        l(error);
      } catch {
        // An error listener that throws has nowhere left to report to.
      }
    }
  }
}

/**
 * The tidewire client: one WebSocket connection, any number of subscriptions, topic state kept
 * once per client and updated by deltas, reconnects with backoff and jitter. Runs in browsers and
 * in Node (no Node-only import at the top level).
 */
import { PROTOCOL_VERSION, type HelloMessage } from '../services/distribution/messages.ts';
import { SelectorError, parseSelector } from '../services/topics/selector.ts';
import { type BackoffOptions, backoffDelay } from './backoff.ts';
import { type ConnectionEvent, type ConnectionState, nextState } from './connection-state.ts';
import { TidewireClientError } from './errors.ts';
import { FrameError, parseFrame } from './frames.ts';
import { Outbox } from './outbox.ts';
import { Subscription, type SubscriptionCore, type SubscriptionHandlers } from './subscription.ts';
import { TopicSync } from './topic-sync.ts';
import { OPEN, type WebSocketConstructor, type WebSocketLike, resolveWebSocket } from './transport.ts';

/** A connection open this long counts as stable: the next loss reconnects after the shortest delay. */
const STABLE_MS = 5000;

export interface TidewireClientOptions {
  /** The server's WebSocket endpoint, e.g. `ws://localhost:8080/ws`. */
  url: string;
  /** A WebSocket implementation; default: globalThis.WebSocket, else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff; default 250 ms doubling up to 10 s, with jitter. */
  reconnect?: BackoffOptions;
  /** Most messages sent per second (extra ones wait); keep it under the server's limit. Default 100. */
  maxMessagesPerSecond?: number;
}

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
  private attempt = 0;
  private openedAt = -1;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private waiting: { resolve: () => void; reject: (err: Error) => void; promise: Promise<void> } | null = null;
  private readonly sync: TopicSync;
  private readonly outbox: Outbox;
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly errorListeners = new Set<(error: TidewireClientError) => void>();

  constructor(private readonly options: TidewireClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError(`"${options.url}" is not a URL: use e.g. ws://localhost:8080/ws`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`"${options.url}" must be a ws:// or wss:// URL`);
    this.outbox = new Outbox(options.maxMessagesPerSecond ?? 100);
    this.sync = new TopicSync({ send: (m) => this.outbox.send(m), error: (e) => this.emitError(e) });
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
      this.attempt = 0;
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
    this.sync.onClose();
    if (ws) ws.close(1000, 'client closed');
    this.transition('close');
    this.waiting?.reject(new TidewireClientError('CONNECTION_FAILED', 'the client was closed before the connection opened'));
    this.waiting = null;
  }

  /**
   * Subscribes to every topic the selector matches (`orders/7/42`, `orders/*\/42`, `orders/**`).
   * Throws TidewireClientError (INVALID_SELECTOR) for a selector the server would refuse.
   */
  subscribe(selector: string, handlers: SubscriptionHandlers = {}): Subscription {
    let parsed;
    try {
      parsed = parseSelector(selector);
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err;
      throw new TidewireClientError('INVALID_SELECTOR', err.message, { selector: String(selector), cause: err });
    }
    const core: SubscriptionCore = { selector: parsed, handlers, state: 'pending', wireId: null, paths: new Set(), stale: null, retry: null };
    this.sync.add(core);
    return new Subscription(core, this.sync.cache, (c) => this.sync.remove(c));
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
      ws = new Ctor(this.options.url);
    } catch (err) {
      this.emitError(new TidewireClientError('CONNECTION_FAILED', `cannot open a WebSocket: ${(err as Error).message}`, { cause: err }));
      this.lost();
      return;
    }
    this.socket = ws;
    ws.onmessage = (ev) => {
      if (this.socket === ws) this.receive(ws, ev.data);
    };
    ws.onclose = () => {
      if (this.socket === ws) this.lost();
    };
    ws.onerror = () => {
      if (this.socket === ws) this.emitError(new TidewireClientError('CONNECTION_FAILED', `the connection to ${this.options.url} failed`));
    };
  }

  private lost(): void {
    this.socket = null;
    this.outbox.detach();
    this.sync.onClose();
    if (this.current === 'closed') return;
    // Back off from the first delay again only after a connection that held: one dropped right
    // after opening (e.g. 4008 on every snapshot) keeps backing off instead of hammering.
    if (this.openedAt >= 0 && Date.now() - this.openedAt >= STABLE_MS) this.attempt = 0;
    this.openedAt = -1;
    this.transition('lost');
    const delay = backoffDelay(this.attempt++, this.options.reconnect);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }

  private receive(ws: WebSocketLike, data: unknown): void {
    let messages;
    try {
      messages = parseFrame(data);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.emitError(new TidewireClientError('PROTOCOL_ERROR', err.message));
      return;
    }
    for (const m of messages) {
      if (this.socket !== ws) return; // a handler closed the client
      if (m.type === 'hello') this.hello(ws, m);
      else if (m.type !== 'pong') this.sync.handle(m);
    }
  }

  private hello(ws: WebSocketLike, m: HelloMessage): void {
    if (m.protocol !== PROTOCOL_VERSION) {
      this.emitError(new TidewireClientError('PROTOCOL_ERROR', `the server speaks protocol ${m.protocol}, this client ${PROTOCOL_VERSION}: upgrade the client`));
    }
    this.epochId = m.epoch;
    this.openedAt = Date.now();
    this.outbox.attach({ send: (text) => ws.readyState === OPEN && ws.send(text) });
    this.sync.onOpen();
    this.transition('opened');
    this.waiting?.resolve();
    this.waiting = null;
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

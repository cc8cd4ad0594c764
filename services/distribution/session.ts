/**
 * One WebSocket connection: its subscriptions, its rate limit and its send queue, and (with
 * security) its principal and permissions. Everything a client sends is answered (a reply, an
 * `error`, or a documented close) and nothing it sends can throw out of here, so one bad client
 * never affects another. Filters, throttles and slow-client conflation live in its
 * SessionDelivery; subscribe answers (fresh or resumed) in subscription-answer.ts.
 */
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { PermissionSet } from '../security/permission-set.ts';
import { type Principal, type SecurityManager, UNAUTHORIZED_MESSAGE } from '../security/security-manager.ts';
import type { ConnectionLease } from '../security/tenant-connections.ts';
import type { Topic, TopicChange, TopicView } from '../../core/topic.ts';
import type { ChangeContext, DeliveryTarget, FanOut, Subscription, SubscriptionGatherer } from './fan-out.ts';
import type { FrameEncoder } from './frame-encoder.ts';
import { type AuthMessage, CloseCode, type SubscribeMessage } from '../../core/messages.ts';
import {
  type ProtocolError,
  authenticatedMessage,
  helloMessage,
  loadingMessage,
  parseClientMessage,
  pongMessage,
  positionMessage,
  protocolErrorMessage,
  subscribedMessage,
  statusMessage,
  unsubscribedMessage,
} from './protocol.ts';
import { type StaleSources, staleFeedsOf } from './feed-status.ts';
import { ABUSE_FACTOR, RateLimiter } from './rate-limiter.ts';
import { SessionAccess, reconcile } from './session-access.ts';
import type { DeliveryOptions, SessionDelivery } from './session-delivery.ts';
import { type OutputDepth, SessionOutput } from './session-output.ts';
import { SessionQueue } from './session-queue.ts';
import type { DisconnectReason, DistributionStats } from './stats.ts';
import { checkSubscribe } from './subscribe-request.ts';
import { type AnswerPages, accessTag, answerSubscribe } from './subscription-answer.ts';
import { matchesSegments } from '../../core/selector.ts';

export interface SessionLimits extends DeliveryOptions {
  readonly sendQueueBytes: number;
  readonly maxSubscriptionsPerSession: number;
  readonly maxMessagesPerSecond: number;
  readonly maxPayloadBytes: number;
}

/** What a session needs from the server that owns it. */
export interface SessionHost {
  readonly view: TopicView;
  readonly fanOut: FanOut;
  /** Null: security is off and every session sees every topic. */
  readonly security: SecurityManager | null;
  readonly stats: DistributionStats;
  readonly logger: Logger;
  readonly limits: SessionLimits;
  /** The session has pending messages: flush it at the next flush round. */
  scheduleFlush(session: Session): void;
  /** The session is gone (closed by either side); called exactly once. */
  sessionEnded(session: Session, reason: DisconnectReason): void;
  /** Sources whose feed is stale now (see feed-status.ts); absent: none ever is. */
  staleSources?(): StaleSources;
  /**
   * True while topic state is being built for the first time (no state was restored): a
   * subscribe is answered only once it is complete (`Session.stateComplete`), so no client takes
   * a half-read table for the whole one. Absent: never.
   */
  loading?(): boolean;
  /**
   * True while a source transaction is applied in parts (ChangeBatch.continues): topic state holds
   * a part of it, so no answer page is read from it; the session waits (`holdPages`) and the host
   * calls `resumePages` once the transaction is whole. Absent: never.
   */
  holding?(): boolean;
  holdPages?(session: Session): void;
}

/** A subscription whose answer is still going out in pages (issue #12, item 6). */
interface Loading {
  readonly sub: Subscription;
  readonly msg: SubscribeMessage;
  readonly pages: AnswerPages;
}

/**
 * Positions go out at most this often per session (and at every heartbeat): a frame per change
 * would otherwise carry ~30 bytes more each; what changed in between, the client lists by version.
 */
export const POSITION_MIN_INTERVAL_MS = 100;

/**
 * Characters of one page of a subscription's answer: small against the send queue and the
 * slow-client threshold (a page never makes a client count as behind), large enough that a page
 * costs one flush round per few thousand topics.
 */
export function pageCharsFor(limits: Pick<SessionLimits, 'sendQueueBytes' | 'slowClientBytes'>): number {
  return Math.max(4096, Math.min(256 * 1024, Math.floor(limits.sendQueueBytes / 8), Math.floor(limits.slowClientBytes / 4)));
}

export class Session implements DeliveryTarget {
  /** Stamp of the last change fan-out queued here: a change matched by two subscriptions is queued once. */
  lastChange = 0;
  // The fields fan-out reads and writes for every delivery come first, close together.
  /** False while fan-out must hand changes to the delivery (see OutputState). */
  simple = true;
  /** Fan-out batch the queue's current group belongs to (-1: none). */
  groupBatch = -1;
  /** Sequence number the queue's current group ends at. */
  private groupSeq = -1;
  /** True while the session waits for a flush round. */
  flushPending = false;
  private ended: DisconnectReason | null = null;
  /** Subscribes received while the state was loading (see SessionHost.loading). */
  private deferred: SubscribeMessage[] = [];
  /** What the session may read (read by fan-out for every change); null without security. */
  permissions: PermissionSet | null = null;
  readonly queue: SessionQueue;
  /** Stamp of the change whose matching subscriptions fan-out is gathering for this session's delivery. */
  gatherStamp = 0;
  /** Filters, throttles, merged topics of slow clients. */
  readonly delivery: SessionDelivery;
  /** Fan-out gathers the subscriptions matching a change into the delivery. */
  get gathering(): SubscriptionGatherer {
    return this.delivery;
  }
  /** Cleared on each heartbeat ping, set again by the pong. */
  alive = true;
  /** The tenant whose fan-out index holds this session's subscriptions; null without security (every tenant). */
  readonly scope: string | null;
  private readonly access: SessionAccess | null;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly output: SessionOutput;
  private rate: RateLimiter;
  /** Set by ws 'error' (oversized or malformed frame) before ws closes the connection. */
  private failure: DisconnectReason | null = null;
  /** Characters of the live subscriptions' filters (bounded: see FILTER_LIMITS.maxTotalPerSession). */
  private filterChars = 0;
  /** Subscription id → the stale status last sent for it (the feed list, or '*' without names); absent: fresh. */
  private readonly statusSent = new Map<string, string>();
  /** Subscriptions whose answer is going out in pages, oldest first; the first one gets the next page. */
  private loads: Loading[] = [];
  private readonly pageChars: number;
  /** The last position announced (-1: none yet), and the permissions' tag it was announced under. */
  private announcedSeq = -1;
  /** A subscribe asked for `position` messages (`positions: true`). */
  private wantsPositions = false;
  private announcedAccess: string | undefined = undefined;
  /** When the last position went out (performance.now()); see POSITION_MIN_INTERVAL_MS. */
  private announcedAt = -Infinity;

  constructor(
    readonly id: string,
    readonly remote: string,
    private readonly ws: WebSocket,
    private readonly host: SessionHost,
    security: { principal: Principal; lease: ConnectionLease | null } | null = null,
  ) {
    this.access = security && host.security ? new SessionAccess(host.security, security.principal, security.lease, () => this.expire()) : null;
    this.scope = this.access ? this.access.tenant : null;
    this.permissions = this.access ? this.access.permissions : null;
    this.queue = new SessionQueue(host.limits.sendQueueBytes, () => ws.bufferedAmount);
    this.output = new SessionOutput(this, ws, {
      view: host.view, fanOut: host.fanOut, stats: host.stats, sendQueueBytes: host.limits.sendQueueBytes, delivery: host.limits,
    });
    this.delivery = this.output.delivery;
    this.pageChars = pageCharsFor(host.limits);
    this.rate = new RateLimiter(this.messageLimit().value);
    ws.on('message', (data, isBinary) => {
      try {
        this.receive(data, isBinary);
      } catch (err) {
        // A bug, not bad input (receive() answers all bad input): end this session, keep the server.
        this.host.logger.error({ session: this.id, remote: this.remote, err }, 'failed to handle a client message');
        this.close(CloseCode.INTERNAL_ERROR, 'serverError', 'internal error');
      }
    });
    ws.on('pong', () => (this.alive = true));
    ws.on('error', (err: Error & { code?: string }) => {
      this.failure = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'payloadTooBig' : 'protocolError';
      this.log('debug', { err: err.message, code: err.code }, 'websocket error');
    });
    ws.on('close', (code: number) => {
      if (this.ended) return;
      this.end(this.failure ?? 'client');
      this.log('debug', { code }, 'session closed');
    });
    this.send(helloMessage(host.view.epoch, host.limits.maxPayloadBytes));
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  get closed(): boolean {
    return this.ended !== null;
  }




  /**
   * The security configuration was reloaded: derive the session's permissions again and apply
   * the difference at once (removals for what it may no longer read, values for what it now may).
   * A session whose access cannot be derived any more (anonymous turned off, tenant changed) is closed with 4003.
   */
  reauthorize(): void {
    const access = this.access;
    if (!access || this.ended) return;
    const result = access.security.rederive(access.principal);
    if (!result.ok || result.principal.tenant !== access.tenant) {
      const why = result.ok ? 'the token\'s tenant changed under the new configuration' : result.detail;
      access.security.audit.revoked({ ...access.who(this.id, this.remote), why });
      this.close(CloseCode.ACCESS_REVOKED, 'accessRevoked', 'access revoked by a configuration change: reconnect');
      return;
    }
    this.switchPrincipal(result.principal);
    this.feedStatus();
  }

  /**
   * The set of stale sources changed (or the session's permissions did): sends a `status` to
   * each subscription whose answer changed: `stale: true` with the feeds (names only with
   * security off, so a session never learns of topics beyond its grants), `stale: false` when
   * its feeds are fresh again.
   */
  feedStatus(): void {
    if (this.ended) return;
    const stale = this.host.staleSources?.();
    if (stale === undefined) return;
    for (const sub of this.subscriptions.values()) this.sendStatus(sub.id, sub.selector, stale);
  }

  private sendStatus(id: string, selector: Subscription['selector'], stale: StaleSources): void {
    const feeds = staleFeedsOf(this.host.view, this.permissions, selector, stale);
    const named = this.host.security === null;
    const key = feeds.length === 0 ? '' : named ? feeds.join('\n') : '*';
    if ((this.statusSent.get(id) ?? '') === key) return;
    if (key === '') this.statusSent.delete(id);
    else this.statusSent.set(id, key);
    this.send(statusMessage(id, feeds.length > 0, named ? feeds : undefined));
  }

  /**
   * Fan-out: queues one change's serialized message of `bytes` UTF-8 bytes, in the group of its
   * batch (a source transaction is never split between frames); drops the session (4008) past
   * its queue limit.
   */
  enqueue(wire: string, bytes: number, batch: number, seq: number): void {
    if (this.ended !== null) return;
    if (this.groupBatch !== batch) this.startBatchGroup(batch, seq);
    else if (this.groupSeq !== seq) {
      // A later part of the same source transaction (ChangeBatch.continues): the group ends there.
      this.groupSeq = seq;
      this.queue.retag(seq);
    }
    if (!this.queue.push(wire, bytes)) {
      this.overflow('send queue full: read faster or subscribe to less');
      return;
    }
    if (!this.flushPending) this.requestFlush();
  }

  private startBatchGroup(batch: number, seq: number): void {
    this.groupBatch = batch;
    this.groupSeq = seq;
    this.queue.group(seq);
  }

  /** A source transaction applied in parts is whole (SessionHost.holding): the replies held back meanwhile go out. */
  transactionEnded(): void {
    if (!this.ended) this.output.transactionEnded();
  }

  private requestFlush(): void {
    this.flushPending = true;
    this.host.scheduleFlush(this);
  }

  /** Fan-out: the change for this session's delivery (filters, throttles, merged topics), once its subscriptions are gathered. */
  deliverGathered(change: TopicChange, segments: readonly string[], ctx: ChangeContext): void {
    if (this.ended) return;
    if (this.loads.length > 0 && this.waitsForPage(change.topic.path, segments)) return;
    try {
      this.output.delivery.deliver(change, segments, ctx);
    } catch (err) {
      this.deliveryFailed(err, change.topic.path);
    }
  }

  /**
   * Delivering to this session failed on the server (a bug in fan-out's fast path, its delivery
   * or its flush): this session alone ends, with 1011 and an error log line; the other sessions,
   * the flush round and ingest go on.
   */
  deliveryFailed(err: unknown, path?: string): void {
    if (this.ended) return;
    this.host.logger.error({ session: this.id, remote: this.remote, err, path }, 'failed to deliver to a session: it is closed with 1011, the others go on');
    this.close(CloseCode.INTERNAL_ERROR, 'serverError', 'internal error');
  }

  /** Flush round: writes everything pending to the socket. */
  flush(encoder: FrameEncoder): void {
    try {
      this.output.flush(encoder);
    } catch (err) {
      this.deliveryFailed(err);
    }
  }

  /** Queue depth, for metrics. */
  queueDepth(): OutputDepth {
    return this.output.depth();
  }

  /** Sends a WebSocket ping; a session still not `alive` at the next heartbeat is terminated. */
  heartbeat(): void {
    if (this.ended) return;
    if (!this.alive) {
      this.end('heartbeat');
      this.ws.terminate();
      this.log('warn', {}, 'client stopped answering pings: connection terminated');
      return;
    }
    this.alive = false;
    this.ws.ping();
    // An idle subscription's position moves on too (changes elsewhere), so a later resume finds
    // the removal log still reaching back to it.
    if (this.subscriptions.size > 0) this.output.announce(true);
  }

  /** Closes the connection with `code`; the session's memory is released at once. */
  close(code: number, reason: DisconnectReason, text: string): void {
    if (this.ended) return;
    this.end(reason);
    this.ws.close(code, text);
    if (reason !== 'shutdown') this.log('warn', { code, reason }, `session closed by the server: ${text}`);
  }

  private end(reason: DisconnectReason): void {
    this.ended = reason;
    this.loads = [];
    for (const sub of this.subscriptions.values()) this.host.fanOut.remove(sub);
    this.subscriptions.clear();
    this.output.dispose();
    this.access?.dispose();
    this.host.sessionEnded(this, reason);
  }

  private expire(): void {
    if (this.ended || !this.access) return;
    this.access.security.audit.expired(this.access.who(this.id, this.remote));
    this.close(CloseCode.TOKEN_EXPIRED, 'tokenExpired', 'token expired: reconnect with a fresh token (or send {"type":"auth"} before expiry)');
  }

  private switchPrincipal(principal: Principal): void {
    const access = this.access!;
    const { before, after } = access.switchTo(principal);
    this.permissions = after;
    if (access.limits.messagesPerSecond !== this.rate.limit) this.rate = new RateLimiter(this.messageLimit().value);
    if (before !== after) {
      // Re-index under the new grants' intersections (synchronous: no change can fall between).
      for (const sub of this.subscriptions.values()) {
        this.host.fanOut.remove(sub);
        this.host.fanOut.add(sub);
      }
      this.output.group();
      const delivery = this.delivery;
      reconcile(this.host.view, [...this.subscriptions.values()], before, after, {
        send: (wire) => this.output.push(wire, Buffer.byteLength(wire)),
        sent: (path, held) => delivery.sent(path, held),
        heldFor: (path) => delivery.heldFor(path),
      });
    }
  }

  /** The binding message rate: the server's, or the tenant's when lower. */
  private messageLimit(): { value: number; tenant: boolean } {
    const server = this.host.limits.maxMessagesPerSecond;
    const tenant = this.access?.limits.messagesPerSecond ?? Infinity;
    return tenant < server ? { value: tenant, tenant: true } : { value: server, tenant: false };
  }

  private send(wire: string): void {
    this.output.send(wire);
  }

  // OutputOwner: the session is its output's owner itself, so the state fan-out touches for every
  // delivery lives on one object (see OutputState).

  /** @internal The session's live subscriptions. */
  liveSubscriptions(): Iterable<Subscription> {
    return this.subscriptions.values();
  }

  /** @internal Puts the session in the next flush round. */
  scheduleFlush(): void {
    this.host.scheduleFlush(this);
  }

  /**
   * @internal The position message to end the frame being flushed with, or null: only with live
   * subscriptions, none loading in pages, nothing merged or throttled waiting (delivery.settled),
   * and only when the position (or the permissions' tag) moved since the last one.
   */
  position(heartbeat = false): string | null {
    if (!this.wantsPositions || this.ended !== null || this.subscriptions.size === 0 || this.loads.length > 0) return null;
    const seq = this.host.view.position;
    const access = accessTag(this.permissions);
    if (seq === this.announcedSeq && access === this.announcedAccess) return null;
    // At most one per interval (a heartbeat always may): the client lists the topics it applied
    // after its last position when it resumes, so a later one costs a few versions, not a gap.
    const now = performance.now();
    if (now - this.announcedAt < POSITION_MIN_INTERVAL_MS && !heartbeat && access === this.announcedAccess) return null;
    if (!this.delivery.settled()) return null;
    this.announcedAt = now;
    this.announcedSeq = seq;
    this.announcedAccess = access;
    return positionMessage(seq, access);
  }

  /** @internal The client cannot be served within its limits. */
  overflow(why: string): void {
    this.close(CloseCode.SEND_QUEUE_FULL, 'sendQueue', why);
  }

  /** @internal ws only throws for a socket that is not open, which a server-side session never is; if it ever does, this session ends and the flush round goes on. */
  sendFailed(err: Error): void {
    this.log('warn', { err: err.message }, 'send failed: connection terminated');
    this.end('protocolError');
    this.ws.terminate();
  }

  private reject(error: ProtocolError): void {
    this.host.stats.errorsOut++;
    this.send(protocolErrorMessage(error));
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    this.host.stats.messagesIn++;
    const verdict = this.rate.hit();
    if (verdict === 'abuse') {
      const limit = this.rate.limit;
      this.close(CloseCode.RATE_ABUSE, 'rateAbuse', `more than ${limit * ABUSE_FACTOR} messages in one second`);
      return;
    }
    if (isBinary) {
      if (verdict === 'limited') this.rateLimited(undefined);
      else this.reject({ code: 'BINARY_NOT_SUPPORTED', message: 'binary frames are not supported: send each message as a JSON text frame' });
      return;
    }
    const parsed = parseClientMessage(data.toString());
    if (verdict === 'limited') {
      this.rateLimited(parsed.ok ? parsed.message.id : parsed.error.id);
      return;
    }
    if (!parsed.ok) {
      this.reject(parsed.error);
      return;
    }
    const msg = parsed.message;
    switch (msg.type) {
      case 'subscribe':
        if (this.host.loading?.()) this.defer(msg);
        else this.subscribe(msg);
        return;
      case 'unsubscribe':
        if (this.undefer(msg.id)) return;
        this.unsubscribe(msg.id);
        return;
      case 'ping':
        this.send(pongMessage(msg.id));
        return;
      case 'auth':
        this.refresh(msg);
        return;
    }
  }

  private rateLimited(id: string | undefined): void {
    const { value: limit, tenant } = this.messageLimit();
    const whose = tenant ? 'your tenant\'s limit of ' : '';
    const message = `more than ${whose}${limit} messages in one second: this message was dropped; send less often (past ${limit * ABUSE_FACTOR} in one second the connection is closed with ${CloseCode.RATE_ABUSE})`;
    if (tenant) {
      this.reject({ code: 'TENANT_LIMIT', message, limit: 'messagesPerSecond', ...(id === undefined ? {} : { id }) });
      return;
    }
    this.reject(id === undefined ? { code: 'RATE_LIMITED', message } : { code: 'RATE_LIMITED', message, id });
  }

  /** An `auth` message: verify the fresh token (async), then switch to it if it names the same subject and tenant. */
  private refresh(msg: AuthMessage): void {
    const access = this.access;
    const { id } = msg;
    if (!access) {
      this.reject({ code: 'UNAUTHORIZED', message: 'this server does not authenticate sessions: no token is needed', ...(id === undefined ? {} : { id }) });
      return;
    }
    void access
      .queueRefresh(async () => {
        const result = await access.security.refresh(access.principal, msg.token, { channel: 'refresh', remote: this.remote, session: this.id });
        if (this.ended) return;
        if (!result.ok) {
          this.reject({ code: 'UNAUTHORIZED', message: `${UNAUTHORIZED_MESSAGE}: the current token stays in force until it expires`, ...(id === undefined ? {} : { id }) });
          return;
        }
        this.switchPrincipal(result.principal);
        const exp = result.principal.claims.exp;
        this.send(authenticatedMessage(id, typeof exp === 'number' ? exp : null));
      })
      .catch((err: unknown) => {
        this.host.logger.error({ session: this.id, remote: this.remote, err }, 'failed to apply a refreshed token');
        this.close(CloseCode.INTERNAL_ERROR, 'serverError', 'internal error');
      });
  }

  /**
   * Registers the subscription, queues the current value of every matching topic (or, resuming,
   * only what changed), then `subscribed`, as one group. All synchronous: the hand-off delivers
   * batches in this same event loop, so no change can fall between reading the view and being
   * registered (no gap, no duplicate).
   */
  /** A subscribe waiting for the state to be complete; bounded like live subscriptions. */
  private defer(msg: SubscribeMessage): void {
    if (this.deferred.length >= this.host.limits.maxSubscriptionsPerSession) {
      this.subscribe(msg); // refused there, with the limit's own error, once live ones count too
      return;
    }
    this.deferred.push(msg);
  }

  /** An unsubscribe of a subscribe still waiting: it is dropped, and answered like any unsubscribe. */
  private undefer(id: string): boolean {
    const i = this.deferred.findIndex((m) => m.id === id);
    if (i < 0) return false;
    this.deferred.splice(i, 1);
    this.send(unsubscribedMessage(id));
    return true;
  }

  /** The state is complete: the subscribes that waited for it are answered, in order. */
  stateComplete(): void {
    const waiting = this.deferred;
    this.deferred = [];
    for (const msg of waiting) {
      if (this.closed) return;
      this.subscribe(msg);
    }
  }

  private subscribe(msg: SubscribeMessage): void {
    const { id } = msg;
    const checked = checkSubscribe(msg, {
      live: this.subscriptions,
      serverMax: this.host.limits.maxSubscriptionsPerSession,
      tenantMax: this.access?.limits.subscriptionsPerSession ?? Infinity,
      filterChars: this.filterChars,
    });
    if (!checked.ok) {
      if (checked.error.code === 'TENANT_LIMIT') {
        this.access!.security.audit.limitExceeded({ ...this.access!.who(this.id, this.remote), limit: 'subscriptionsPerSession', value: this.access!.limits.subscriptionsPerSession });
      }
      this.reject(checked.error);
      return;
    }
    const { selector, filter, maxRate } = checked;
    if (msg.positions === true) this.wantsPositions = true;
    const sub: Subscription = { id, selector, target: this, filter, maxRate };
    this.subscriptions.set(id, sub);
    this.host.fanOut.add(sub);
    this.delivery.count(sub, 1);
    if (filter) this.filterChars += filter.text.length;
    const permissions = this.permissions;
    // Only what the session may read, projected; a selector reaching beyond simply matches fewer
    // topics, and one it may not read at all answers exactly like a path with no topic.
    this.output.group();
    const delivery = this.delivery;
    const answer = answerSubscribe(
      { view: this.host.view, permissions, selector, filter, resume: msg.resume, pageChars: this.pageChars },
      this.answerSink(delivery),
    );
    if (permissions) {
      const coverage = permissions.coverage(selector);
      if (coverage !== 'all') this.access!.security.audit.subscription({ ...this.access!.who(this.id, this.remote), selector: selector.text, coverage });
    }
    if (answer.rest === undefined) {
      this.answered(msg, selector, answer.topics, answer.resumed);
      return;
    }
    // Too large for one page: the rest goes out a page at a time as the client reads.
    const pages = answer.rest;
    this.pushLoading(id, pages);
    this.loads.push({ sub, msg, pages });
    if (this.loads.length > 1) return; // the first one's pages go first; this one follows
    this.output.setPaging(true);
    this.output.whenDrained(this.pageChars, (this.pageRead ??= () => this.nextPage()));
    this.log('debug', { id, selector: selector.text, total: pages.total }, 'subscription loading in pages');
  }

  private answerSink(delivery: SessionDelivery): Parameters<typeof answerSubscribe>[1] {
    return {
      send: (wire) => this.output.push(wire, Buffer.byteLength(wire)),
      sent: (path, held) => delivery.sent(path, held),
      holds: (topic: Topic, version) => delivery.holds(topic, version),
    };
  }

  private pushLoading(id: string, pages: AnswerPages): void {
    const wire = loadingMessage(id, pages.sent, pages.total);
    this.output.push(wire, Buffer.byteLength(wire));
  }

  /** The answer is complete: `subscribed`, then the feed status when stale. */
  private answered(msg: SubscribeMessage, selector: Subscription['selector'], topics: number, resumed: ReturnType<typeof answerSubscribe>['resumed']): void {
    const done = subscribedMessage(msg.id, selector.text, topics, resumed);
    this.output.push(done, Buffer.byteLength(done));
    const stale = this.host.staleSources?.();
    if (stale !== undefined && stale.size > 0) this.sendStatus(msg.id, selector, stale);
    this.log('debug', { id: msg.id, selector: selector.text, topics, resumed }, 'subscribed');
  }

  /** The host's hold is over (SessionHost.holding): the next answer page, when one waits. */
  resumePages(): void {
    if (!this.ended && this.loads.length > 0) this.nextPage();
  }

  /** Calls nextPage once the client read what was sent (made at the first page: most sessions never page). */
  private pageRead: (() => void) | null = null;

  /** The client read the previous page: the next one (its own group), and progress or `subscribed`. */
  private nextPage(): void {
    if (this.ended) return;
    if (this.host.holding?.()) {
      this.host.holdPages!(this);
      return;
    }
    try {
      const load = this.loads[0];
      if (load === undefined) {
        this.output.setPaging(false);
        return;
      }
      const { pages, msg, sub } = load;
      this.output.group();
      pages.next(this.host.view, this.permissions, this.pageChars);
      if (pages.done) {
        this.loads.shift();
        this.answered(msg, sub.selector, pages.topics, pages.resumed(msg.resume));
      } else {
        this.pushLoading(msg.id, pages);
      }
      if (this.loads.length === 0) this.output.setPaging(false);
      else this.output.whenDrained(this.pageChars, (this.pageRead ??= () => this.nextPage()));
    } catch (err) {
      this.deliveryFailed(err);
    }
  }

  /**
   * A change of a topic that waits for its page is not delivered (the page carries its value
   * then), unless another subscription of the session already holds it.
   */
  private waitsForPage(path: string, segments: readonly string[]): boolean {
    if (!this.loads.some((l) => l.pages.has(path))) return false;
    for (const sub of this.subscriptions.values()) {
      if (!matchesSegments(sub.selector, segments)) continue;
      const load = this.loads.find((l) => l.sub === sub);
      if (load === undefined || !load.pages.has(path)) return false;
    }
    return true;
  }

  private unsubscribe(id: string): void {
    const sub = this.subscriptions.get(id);
    if (!sub) {
      this.reject({ code: 'UNKNOWN_SUBSCRIPTION', message: `no live subscription has id "${id}"`, id });
      return;
    }
    this.subscriptions.delete(id);
    this.statusSent.delete(id);
    this.loads = this.loads.filter((l) => l.sub !== sub);
    this.host.fanOut.remove(sub);
    this.delivery.count(sub, -1);
    if (sub.filter) this.filterChars -= sub.filter.text.length;
    this.delivery.unsubscribed();
    this.send(unsubscribedMessage(id));
  }

  private log(level: 'debug' | 'warn', fields: Record<string, unknown>, msg: string): void {
    this.host.logger[level]({ session: this.id, remote: this.remote, ...fields }, msg);
  }
}

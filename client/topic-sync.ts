/**
 * Keeps the client's topics in step with the server, whatever the transport: applies values,
 * deltas and removals to the one shared cache, tells each subscription what changed for it, and
 * re-subscribes when something may have been missed (a delta that does not follow the held
 * version, a reconnect). A re-subscribe in the same server epoch lists the versions held
 * (`resume`), so the server sends only what changed; after a server restart (new epoch) values
 * equal to what was held are not reported again and held topics that did not come back are
 * reported removed, so neither a reconnect nor a restart shows the application a duplicate or
 * leaves a ghost.
 *
 * A frame (or all parts of a group) is applied as a whole before any handler is called, so a
 * handler reading `values` never sees half a transaction. After a reconnect, everything received
 * until every resumed subscription is answered is applied as one frame at the end, so a resume
 * answered in pages never shows a mix of the old state and the new one.
 */
import { type JsonObject, isJsonObject, jsonEqual } from '../core/json.ts';
import { SelectorIndex } from '../core/selector-index.ts';
import type {
  ClientMessage, DeltaMessage, ErrorMessage, LoadingMessage, PositionMessage, ServerMessage, SubscribeMessage, StatusMessage, SubscribedMessage,
} from '../core/messages.ts';
import { TidewireClientError } from './errors.ts';
import { applyPatch } from './json-patch.ts';
import { DEFAULT_MAX_PAYLOAD_BYTES, MAX_MOVED, planResume } from './resume.ts';
import type { CacheEntry, FeedStatus, ResumeInfo, SubscriptionCore, TopicCache } from './subscription.ts';

export interface SyncHooks {
  /** Sends a message now or as soon as the connection allows. */
  send(message: ClientMessage): void;
  /** Reports an error to the client's onError listeners. */
  error(error: TidewireClientError): void;
  /** A subscription is live again after a reconnect. */
  resumed?(info: ResumeInfo): void;
}

/** What the server said about itself in `hello`. */
export interface ServerInfo {
  readonly epoch: string;
  readonly maxPayloadBytes?: number;
}

/** Delay before re-sending a subscribe the server refused with RATE_LIMITED. */
export const RATE_LIMIT_RETRY_MS = 1000;

export class TopicSync {
  readonly cache: TopicCache = new Map();
  private readonly cores = new Set<SubscriptionCore>();
  private readonly index = new SelectorIndex<SubscriptionCore>();
  private readonly byWireId = new Map<string, SubscriptionCore>();
  /** Unsubscribes sent and not yet confirmed, to retry them if they were rate limited. */
  private readonly retiring = new Set<string>();
  private connected = false;
  private nextId = 0;
  /** The epoch the cached versions belong to (null: unknown, they cannot be resumed). */
  private epoch: string | null = null;
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES;
  /**
   * Handler calls held back until the frame being applied is complete, flat, DEFERRED_STRIDE
   * slots each: the subscription (null: a function to run, in the name's slot), the handler's
   * name, how many arguments, and up to three arguments. (A closure and an argument array per
   * call were a fifth of the SDK's allocations loading a 1M-topic subscription.)
   */
  private deferred: unknown[] | null = null;
  /**
   * After a reconnect: the messages received until every resumed subscription is answered, applied
   * then as one frame. A resume's answer may come in pages, with changes between them; applied as
   * they came, the values would pass through states that never existed together (some topics at
   * the new position, others still at the old one), while the application treats them as live.
   */
  private held: ServerMessage[] | null = null;
  /** The subscribe ids whose answer (`subscribed`, or a refusal) ends the hold. */
  private readonly awaiting = new Set<string>();

  constructor(private readonly hooks: SyncHooks) {}

  /** Starts tracking a subscription and requests it when connected. */
  add(core: SubscriptionCore): void {
    this.cores.add(core);
    this.index.add(core.selector, core);
    if (this.connected) this.request(core);
  }

  /** Stops a subscription: releases its topics without reporting removals to it. */
  remove(core: SubscriptionCore): void {
    if (core.state === 'closed' || core.state === 'failed') return;
    this.retire(core);
    core.state = 'closed';
    this.drop(core);
  }

  /**
   * The connection is open (hello received): (re-)request every subscription. In the same epoch
   * as the held versions, with `resume`; in another (or an unknown) one, held versions are void.
   */
  onOpen(server?: ServerInfo): void {
    const reconnect = this.epoch !== null || this.cache.size > 0;
    const epochChanged = server === undefined || server.epoch !== this.epoch;
    if (epochChanged) {
      for (const entry of this.cache.values()) entry.version = -1;
      for (const core of this.cores) core.position = null;
    }
    this.epoch = server?.epoch ?? null;
    this.maxPayloadBytes = server?.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.connected = true;
    this.retiring.clear();
    this.byWireId.clear();
    for (const core of this.cores) this.request(core, reconnect, epochChanged && reconnect);
    this.awaiting.clear();
    if (reconnect) for (const core of this.cores) if (core.state === 'resyncing' && core.wireId !== null) this.awaiting.add(core.wireId);
    this.held = this.awaiting.size > 0 ? [] : null;
  }

  /** The connection is gone: nothing is live. Held versions are kept to resume with. */
  onClose(): void {
    this.connected = false;
    // What was held is dropped unapplied: the values stay those of before, resumed again next time.
    this.held = null;
    this.awaiting.clear();
    this.byWireId.clear();
    this.retiring.clear();
    for (const core of this.cores) {
      core.wireId = null;
      if (core.retry !== null) clearTimeout(core.retry);
      core.retry = null;
      if (core.state === 'live') core.state = 'resyncing';
    }
  }

  /** Something may have been missed (a broken frame sequence): fetch every subscription again. */
  resyncAll(): void {
    for (const entry of this.cache.values()) entry.version = -1;
    for (const core of this.cores) core.position = null;
    this.gap([...this.cores]);
  }

  /** Applies every message of a frame (or of all parts of a group), then calls the handlers. */
  handleFrame(messages: readonly ServerMessage[]): void {
    if (this.held !== null) {
      const progress: ServerMessage[] = [];
      for (const m of messages) {
        if (m.type === 'loading') progress.push(m); // progress is shown at once; it changes no value
        else this.held.push(m);
        if ((m.type === 'subscribed' || m.type === 'error') && m.id !== undefined) this.awaiting.delete(m.id);
      }
      if (this.awaiting.size > 0) {
        if (progress.length > 0) this.apply(progress);
        return;
      }
      const all = this.held;
      this.held = null;
      this.apply([...progress, ...all]);
      return;
    }
    this.apply(messages);
  }

  private apply(messages: readonly ServerMessage[]): void {
    const outer = this.deferred === null;
    if (outer) this.deferred = [];
    try {
      for (const m of messages) this.handle(m);
    } finally {
      if (outer) {
        const calls = this.deferred!;
        this.deferred = null;
        for (let i = 0; i < calls.length; i += DEFERRED_STRIDE) {
          const core = calls[i] as SubscriptionCore | null;
          if (core === null) (calls[i + 1] as () => void)();
          else this.invoke(core, calls[i + 1] as HandlerName, calls[i + 2] as number, calls[i + 3], calls[i + 4], calls[i + 5]);
        }
      }
    }
  }

  handle(m: ServerMessage): void {
    switch (m.type) {
      case 'value':
        this.value(m.path, m.version, m.value);
        return;
      case 'delta':
        this.delta(m);
        return;
      case 'removal':
        this.removal(m.path, m.reason);
        return;
      case 'loading':
        this.loading(m);
        return;
      case 'subscribed':
        this.subscribed(m);
        return;
      case 'unsubscribed':
        this.retiring.delete(m.id);
        return;
      case 'error':
        this.serverError(m);
        return;
      case 'status':
        this.status(m);
        return;
      case 'position':
        this.position(m);
        return;
    }
  }

  /** The live subscriptions hold the state at `seq` now: what they resume from. */
  private position(m: PositionMessage): void {
    for (const core of this.cores) {
      if (core.state !== 'live') continue;
      if (core.position) {
        core.position.seq = m.seq;
        core.position.access = m.access;
        core.position.moved.clear();
      } else {
        core.position = m.access === undefined ? { seq: m.seq, moved: new Set() } : { seq: m.seq, access: m.access, moved: new Set() };
      }
    }
  }

  /** A topic message was applied after the last position: resuming lists its version. */
  private moved(cores: readonly SubscriptionCore[], path: string): void {
    for (const core of cores) {
      const pos = core.position;
      if (!pos) continue;
      pos.moved.add(path);
      if (pos.moved.size > MAX_MOVED) core.position = null;
    }
  }

  private status(m: StatusMessage): void {
    const core = this.byWireId.get(m.id);
    if (!core || core.state === 'closed' || core.state === 'failed') return;
    core.feedUnconfirmed = false;
    const stale = m.stale === true;
    const status: FeedStatus = Array.isArray(m.sources) ? { stale, sources: m.sources } : { stale };
    const was = core.feed ?? null;
    core.feed = stale ? status : null;
    if (!stale && was === null) return;
    this.call(core, 'onStatus', status);
  }

  private matching(path: string): SubscriptionCore[] {
    const out: SubscriptionCore[] = [];
    this.index.match(path.split('/'), (core) => out.push(core));
    return out;
  }

  private value(path: string, version: number, value: JsonObject): void {
    const cores = this.matching(path);
    if (cores.length === 0) return;
    this.moved(cores, path);
    let entry = this.cache.get(path);
    const changed = !entry || !jsonEqual(entry.value, value);
    if (entry) {
      entry.value = value;
      entry.version = version;
    } else {
      this.cache.set(path, (entry = { value, version, refs: 0 }));
    }
    this.route(path, entry, cores, value, version, changed);
  }

  private delta(m: DeltaMessage): void {
    const entry = this.cache.get(m.path);
    const cores = this.matching(m.path);
    this.moved(cores, m.path);
    if (!entry) {
      // Nothing held: a late delta for a subscription already gone, or (if one matches) a gap.
      if (cores.length > 0) this.gap(cores);
      return;
    }
    let next: unknown;
    if (entry.version === (m.base ?? m.version - 1)) {
      try {
        next = applyPatch(entry.value, m.patch);
      } catch {
        next = undefined;
      }
    }
    if (!isJsonObject(next)) {
      // Never apply a delta to the wrong base: mark the value stale and fetch it again.
      entry.version = -1;
      for (const core of cores) core.position = null;
      this.gap(cores);
      return;
    }
    entry.value = next;
    entry.version = m.version;
    this.route(m.path, entry, cores, next, m.version, true);
  }

  /**
   * Tells each subscription whose selector covers the path what the new value means for it: a
   * value (new to it, or changed), or a removal when its filter no longer matches.
   */
  private route(path: string, entry: CacheEntry, cores: SubscriptionCore[], value: JsonObject, version: number, changed: boolean): void {
    for (const core of cores) {
      const matches = core.filter == null || core.filter.test(value);
      if (!matches) {
        if (core.paths.has(path)) {
          core.stale?.delete(path);
          this.release(core, path);
          this.call(core, 'onRemoval', path);
        }
        continue;
      }
      core.stale?.delete(path);
      // One lookup, not has() then add(): a million-topic load makes these sets large.
      const held = core.paths.size;
      const fresh = core.paths.add(path).size !== held;
      if (fresh) entry.refs++;
      if (fresh || changed) this.call(core, 'onValue', path, value, version);
    }
    if (entry.refs <= 0) this.cache.delete(path);
  }

  private removal(path: string, reason?: string): void {
    const entry = this.cache.get(path);
    if (!entry) return;
    const cores = this.matching(path);
    this.moved(cores, path);
    if (reason === 'filter') {
      // The topic left a filter: a subscription without one still holds it.
      for (const core of cores) {
        if (core.filter == null || !core.paths.has(path)) continue;
        core.stale?.delete(path);
        this.release(core, path);
        this.call(core, 'onRemoval', path);
      }
      return;
    }
    this.cache.delete(path);
    for (const core of cores) {
      core.stale?.delete(path);
      if (core.paths.delete(path)) this.call(core, 'onRemoval', path);
    }
  }

  /** A page of a large answer arrived (the subscription is not live until `subscribed`). */
  private loading(m: LoadingMessage): void {
    const core = this.byWireId.get(m.id);
    if (!core || core.state === 'closed' || core.state === 'failed') return;
    core.progress = { sent: m.sent, total: m.total };
    this.call(core, 'onProgress', m.sent, m.total);
  }

  private subscribed(m: SubscribedMessage): void {
    const core = this.byWireId.get(m.id);
    if (!core || core.state === 'closed' || core.state === 'failed') return;
    core.state = 'live';
    core.progress = null;
    let stale = core.stale;
    core.stale = null;
    const resuming = core.resuming;
    core.resuming = null;
    // Resumed from the position: held topics not sent are unchanged, unless the answer was whole.
    if (resuming?.bySeq && m.resumed !== 'partial' && m.resumed !== 'fresh') stale = null;
    if (stale) {
      for (const path of stale) {
        this.release(core, path);
        this.call(core, 'onRemoval', path);
      }
    }
    if (resuming?.afterReconnect) {
      const resumed = resuming.epochChanged ? 'fresh' : resuming.truncated && m.resumed === 'exact' ? 'partial' : (m.resumed ?? 'fresh');
      core.resumed = resumed;
      const info: ResumeInfo = { selector: core.selector.text, resumed, epochChanged: resuming.epochChanged, topics: m.topics };
      this.call(core, 'onResume', info);
      const report = this.hooks.resumed;
      if (report) this.later(() => report(info));
    }
    this.call(core, 'onLive');
    if (core.feed) {
      // A new server-side subscription: the server sends `status` after it only while stale.
      core.feedUnconfirmed = true;
      this.later(() => {
        if (!core.feedUnconfirmed || !core.feed) return;
        core.feedUnconfirmed = false;
        core.feed = null;
        this.call(core, 'onStatus', { stale: false });
      });
    }
  }

  private serverError(m: ErrorMessage): void {
    const core = m.id === undefined ? undefined : this.byWireId.get(m.id);
    if (m.code === 'RATE_LIMITED' && m.id !== undefined && this.retiring.has(m.id)) {
      const id = m.id;
      setTimeout(() => this.retiring.has(id) && this.hooks.send({ type: 'unsubscribe', id }), RATE_LIMIT_RETRY_MS);
      return;
    }
    if (m.code === 'UNKNOWN_SUBSCRIPTION' && m.id !== undefined && this.retiring.delete(m.id)) return;
    if (!core || core.wireId !== m.id) {
      this.hooks.error(new TidewireClientError(m.code, m.message));
      return;
    }
    if (m.code === 'RATE_LIMITED') {
      // The request was dropped, not refused: ask again once the server's rate window has passed.
      const resuming = core.resuming;
      core.retry = setTimeout(() => {
        core.retry = null;
        if (this.connected && core.wireId === m.id) this.request(core, resuming?.afterReconnect ?? false, resuming?.epochChanged ?? false);
      }, RATE_LIMIT_RETRY_MS);
      return;
    }
    this.byWireId.delete(m.id!);
    core.wireId = null;
    core.state = 'failed';
    this.drop(core);
    const err = new TidewireClientError(m.code, `subscription "${core.selector.text}" refused: ${m.message}`, { selector: core.selector.text });
    this.hooks.error(err);
    this.call(core, 'onError', err);
  }

  /** A delta could not be applied: every live subscription covering the path is fetched again. */
  private gap(cores: SubscriptionCore[]): void {
    if (!this.connected) return;
    for (const core of cores) {
      // A subscription already waiting for `subscribed` gets fresh values from that request.
      if (core.state !== 'live') continue;
      this.retire(core);
      this.request(core);
    }
  }

  /**
   * Sends a subscribe under a fresh id. Held paths listed in its `resume` stay held unless the
   * server removes them; the others are stale until the server sends them again.
   */
  private request(core: SubscriptionCore, afterReconnect = false, epochChanged = false): void {
    if (core.state === 'closed' || core.state === 'failed') return;
    if (core.retry !== null) clearTimeout(core.retry);
    core.retry = null;
    if (core.wireId !== null) this.byWireId.delete(core.wireId);
    core.wireId = `s${++this.nextId}`;
    this.byWireId.set(core.wireId, core);
    const msg: SubscribeMessage = { type: 'subscribe', id: core.wireId, selector: core.selector.text, positions: true };
    if (core.filter) msg.filter = core.filter.text;
    if (core.maxRate) msg.maxRate = core.maxRate;
    let listed: Set<string> = new Set();
    let truncated = false;
    let bySeq = false;
    if (this.epoch !== null && (afterReconnect || core.paths.size > 0) && !epochChanged) {
      const pos = core.position;
      const bytes = JSON.stringify(msg).length;
      // From the position: its seq, and the versions of the topics applied after it (when they fit).
      const moved = pos ? [...pos.moved].filter((path) => core.paths.has(path)) : [];
      const fromPosition = pos ? planResume(this.epoch, moved, this.cache, bytes + 48 + (pos.access?.length ?? 0), this.maxPayloadBytes) : null;
      if (pos && fromPosition && !fromPosition.truncated && fromPosition.listed.size === moved.length) {
        msg.resume = { epoch: this.epoch, seq: pos.seq };
        if (pos.access !== undefined) msg.resume.access = pos.access;
        if (fromPosition.listed.size > 0) msg.resume.versions = fromPosition.resume.versions;
        listed = new Set(core.paths);
        bySeq = true;
      } else {
        const plan = planResume(this.epoch, core.paths, this.cache, bytes, this.maxPayloadBytes);
        msg.resume = plan.resume;
        listed = plan.listed;
        truncated = plan.truncated;
      }
    }
    core.position = null;
    core.resuming = { listed, truncated, epochChanged, afterReconnect, bySeq };
    core.progress = null;
    if (core.paths.size > 0) {
      core.state = 'resyncing';
      core.stale = new Set();
      // From the position, every held topic stays unconfirmed: dropped only if the answer is whole.
      for (const path of core.paths) if (bySeq || !listed.has(path)) core.stale.add(path);
    } else {
      core.state = 'pending';
      core.stale = null;
    }
    this.hooks.send(msg);
  }

  /** Ends the server-side subscription, if there is one. */
  private retire(core: SubscriptionCore): void {
    if (core.retry !== null) clearTimeout(core.retry);
    core.retry = null;
    const id = core.wireId;
    if (id === null) return;
    core.wireId = null;
    this.byWireId.delete(id);
    if (!this.connected) return;
    this.retiring.add(id);
    this.hooks.send({ type: 'unsubscribe', id });
  }

  /** Forgets a subscription that will receive nothing more. */
  private drop(core: SubscriptionCore): void {
    this.index.remove(core.selector, core);
    this.cores.delete(core);
    for (const path of core.paths) this.release(core, path);
    core.stale = null;
  }

  private release(core: SubscriptionCore, path: string): void {
    if (!core.paths.delete(path)) return;
    const entry = this.cache.get(path);
    if (entry && --entry.refs <= 0) this.cache.delete(path);
  }

  /** Runs `fn` now, or once the frame being applied is complete. */
  private later(fn: () => void): void {
    if (this.deferred) this.deferred.push(null, fn, 0, undefined, undefined, undefined);
    else fn();
  }

  /** Calls a subscription's handler now, or once the frame being applied is complete. */
  private call<K extends HandlerName>(core: SubscriptionCore, name: K, ...args: Parameters<NonNullable<SubscriptionCore['handlers'][K]>>): void {
    const [a, b, c] = args as unknown[];
    if (this.deferred) this.deferred.push(core, name, args.length, a, b, c);
    else this.invoke(core, name, args.length, a, b, c);
  }

  /** Calls the handler with exactly `argc` of a, b, c (a handler sees the arguments its type names, no more). */
  private invoke(core: SubscriptionCore, name: HandlerName, argc: number, a: unknown, b: unknown, c: unknown): void {
    const fn = core.handlers[name] as ((...x: unknown[]) => void) | undefined;
    if (!fn || core.state === 'closed') return;
    const h = core.handlers;
    try {
      if (argc === 3) fn.call(h, a, b, c);
      else if (argc === 2) fn.call(h, a, b);
      else if (argc === 1) fn.call(h, a);
      else fn.call(h);
    } catch (err) {
      if (name === 'onError') return;
      this.hooks.error(new TidewireClientError('HANDLER_FAILED', `${name} handler of "${core.selector.text}" threw: ${(err as Error)?.message ?? err}`, { selector: core.selector.text, cause: err }));
    }
  }
}

type HandlerName = 'onValue' | 'onRemoval' | 'onLive' | 'onError' | 'onResume' | 'onStatus' | 'onProgress';

/** Slots per held-back handler call in TopicSync.deferred. */
const DEFERRED_STRIDE = 6;

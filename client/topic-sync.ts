/**
 * Keeps the client's topics in step with the server, whatever the transport: applies values,
 * deltas and removals to the one shared cache, tells each subscription what changed for it, and
 * re-subscribes when something may have been missed (a delta that does not follow the held
 * version, a reconnect). After a re-subscribe, values equal to what was held are not reported
 * again and held topics that did not come back are reported removed, so neither a reconnect nor
 * a server restart shows the application a duplicate or leaves a ghost.
 */
import { type JsonObject, isJsonObject, jsonEqual } from '../services/json.ts';
import { SelectorIndex } from '../services/topics/selector-index.ts';
import type { ClientMessage, DeltaMessage, ErrorMessage, ServerMessage } from '../services/distribution/messages.ts';
import { TidewireClientError } from './errors.ts';
import { applyPatch } from './json-patch.ts';
import type { SubscriptionCore, TopicCache } from './subscription.ts';

export interface SyncHooks {
  /** Sends a message now or as soon as the connection allows. */
  send(message: ClientMessage): void;
  /** Reports an error to the client's onError listeners. */
  error(error: TidewireClientError): void;
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

  /** The connection is open (hello received): (re-)request every subscription. */
  onOpen(): void {
    this.connected = true;
    this.retiring.clear();
    this.byWireId.clear();
    for (const core of this.cores) this.request(core);
  }

  /** The connection is gone: nothing is live, and every held version may be outdated. */
  onClose(): void {
    this.connected = false;
    this.byWireId.clear();
    this.retiring.clear();
    for (const core of this.cores) {
      core.wireId = null;
      if (core.retry !== null) clearTimeout(core.retry);
      core.retry = null;
      if (core.state === 'live') core.state = 'resyncing';
    }
    for (const entry of this.cache.values()) entry.version = -1;
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
        this.removal(m.path);
        return;
      case 'subscribed':
        this.subscribed(m.id);
        return;
      case 'unsubscribed':
        this.retiring.delete(m.id);
        return;
      case 'error':
        this.serverError(m);
        return;
    }
  }

  private matching(path: string): SubscriptionCore[] {
    const out: SubscriptionCore[] = [];
    this.index.match(path.split('/'), (core) => out.push(core));
    return out;
  }

  private value(path: string, version: number, value: JsonObject): void {
    const cores = this.matching(path);
    if (cores.length === 0) return;
    let entry = this.cache.get(path);
    const changed = !entry || !jsonEqual(entry.value, value);
    if (entry) {
      entry.value = value;
      entry.version = version;
    } else {
      this.cache.set(path, (entry = { value, version, refs: 0 }));
    }
    for (const core of cores) {
      core.stale?.delete(path);
      const fresh = !core.paths.has(path);
      if (fresh) {
        core.paths.add(path);
        entry.refs++;
      }
      if (fresh || changed) this.call(core, 'onValue', path, value, version);
    }
  }

  private delta(m: DeltaMessage): void {
    const entry = this.cache.get(m.path);
    const cores = this.matching(m.path);
    if (!entry) {
      // Nothing held: a late delta for a subscription already gone, or (if one matches) a gap.
      if (cores.length > 0) this.gap(cores);
      return;
    }
    let next: unknown;
    if (entry.version === m.version - 1) {
      try {
        next = applyPatch(entry.value, m.patch);
      } catch {
        next = undefined;
      }
    }
    if (!isJsonObject(next)) {
      // Never apply a delta to the wrong base: mark the value stale and fetch it again.
      entry.version = -1;
      this.gap(cores);
      return;
    }
    entry.value = next;
    entry.version = m.version;
    for (const core of cores) {
      if (!core.paths.has(m.path)) {
        core.paths.add(m.path);
        entry.refs++;
      }
      this.call(core, 'onValue', m.path, next, m.version);
    }
  }

  private removal(path: string): void {
    const entry = this.cache.get(path);
    if (!entry) return;
    this.cache.delete(path);
    for (const core of this.matching(path)) {
      core.stale?.delete(path);
      if (core.paths.delete(path)) this.call(core, 'onRemoval', path);
    }
  }

  private subscribed(id: string): void {
    const core = this.byWireId.get(id);
    if (!core || core.state === 'closed' || core.state === 'failed') return;
    core.state = 'live';
    const stale = core.stale;
    core.stale = null;
    if (stale) {
      for (const path of stale) {
        this.release(core, path);
        this.call(core, 'onRemoval', path);
      }
    }
    this.call(core, 'onLive');
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
      core.retry = setTimeout(() => {
        core.retry = null;
        if (this.connected && core.wireId === m.id) this.request(core);
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

  /** Sends a subscribe under a fresh id; held paths become stale until the server confirms them. */
  private request(core: SubscriptionCore): void {
    if (core.state === 'closed' || core.state === 'failed') return;
    if (core.retry !== null) clearTimeout(core.retry);
    core.retry = null;
    if (core.wireId !== null) this.byWireId.delete(core.wireId);
    core.wireId = `s${++this.nextId}`;
    this.byWireId.set(core.wireId, core);
    if (core.paths.size > 0) {
      core.state = 'resyncing';
      core.stale = new Set(core.paths);
    } else {
      core.state = 'pending';
    }
    this.hooks.send({ type: 'subscribe', id: core.wireId, selector: core.selector.text });
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

  private call<K extends 'onValue' | 'onRemoval' | 'onLive' | 'onError'>(
    core: SubscriptionCore,
    name: K,
    ...args: Parameters<NonNullable<SubscriptionCore['handlers'][K]>>
  ): void {
    const fn = core.handlers[name] as ((...a: unknown[]) => void) | undefined;
    if (!fn || core.state === 'closed') return;
    try {
      fn.apply(core.handlers, args);
    } catch (err) {
      if (name === 'onError') return;
      this.hooks.error(new TidewireClientError('HANDLER_FAILED', `${name} handler of "${core.selector.text}" threw: ${(err as Error)?.message ?? err}`, { selector: core.selector.text, cause: err }));
    }
  }
}

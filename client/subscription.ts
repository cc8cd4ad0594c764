/**
 * A subscription as the application sees it, and the state the client keeps for it. Topic values
 * are stored once per client (TopicCache); a subscription holds only the set of paths it covers
 * (those its selector and filter match), and its `values` map is a view over the cache.
 *
 * States: pending ──subscribed──▶ live ──gap or reconnect──▶ resyncing ──subscribed──▶ live;
 * any ──unsubscribe()──▶ closed; pending/resyncing ──refused by the server──▶ failed.
 */
import type { ResumeKind } from '../core/messages.ts';
import type { JsonObject } from '../core/json.ts';
import type { Filter } from '../core/filter.ts';
import type { Selector } from '../core/selector.ts';
import type { TidewireClientError } from './errors.ts';

export type SubscriptionState = 'pending' | 'live' | 'resyncing' | 'closed' | 'failed';

/** Server-side options of a subscription. */
/** The filter language (`filters` from '@tidewire/client/filter'), passed to the client to use `filter`. */
export interface FilterLanguage {
  /** Compiles a filter, or says why it is refused (with the position). */
  compile(text: string): { readonly filter: Filter; readonly error?: undefined } | { readonly filter?: undefined; readonly error: Error };
}

export interface SubscribeOptions {
  /**
   * Only topics whose value matches, e.g. `status = 'open' and total >= 100` (docs/PROTOCOL.md,
   * "Filters"). A topic that starts matching is reported by onValue, one that stops by onRemoval.
   */
  filter?: string;
  /** At most this many updates per second per topic (e.g. 2); the latest value always arrives. */
  maxRate?: number;
}

/** How a subscription came back after a reconnect. */
export interface ResumeInfo {
  readonly selector: string;
  /**
   * `exact`: only what changed while disconnected was sent (nothing was missed, nothing resent).
   * `partial`: some values were sent whole (the server's history did not reach back far enough,
   * or the client held more topics than fit in one request). `fresh`: the server restarted (new
   * epoch): every value was sent again (values equal to what was held are not reported).
   */
  readonly resumed: ResumeKind;
  /** The server's epoch changed (it restarted and rebuilt its state). */
  readonly epochChanged: boolean;
  /** Topics the subscription matches now. */
  readonly topics: number;
}

export interface SubscriptionHandlers {
  /** A topic's value is new to this subscription or changed. Not called for values that did not change (e.g. after a reconnect). */
  onValue?(path: string, value: JsonObject, version: number): void;
  /** A topic this subscription held is gone. */
  onRemoval?(path: string): void;
  /**
   * A large answer is arriving in pages: `sent` of `total` topics so far (docs/PROTOCOL.md,
   * "Large subscriptions"). Called after each page but the last; onLive follows the last.
   * @example
   * client.subscribe('accounts/**', { onProgress: (sent, total) => bar.set(sent / total) });
   */
  onProgress?(sent: number, total: number): void;
  /** Every value the server had is in `values` and changes are flowing (again after each re-subscribe). */
  onLive?(): void;
  /** After a reconnect, once the subscription is live again: how it was resumed. Called before onLive. */
  onResume?(info: ResumeInfo): void;
  /** The server refused the subscription, or a handler threw. */
  onError?(error: TidewireClientError): void;
  /**
   * The feed behind the subscription went stale (its source sent nothing, not even a heartbeat,
   * past the server's threshold: grey out the values) or is live again. docs/PROTOCOL.md, "Feed status".
   */
  onStatus?(status: FeedStatus): void;
}

/** Whether a subscription's values come from a live feed. */
export interface FeedStatus {
  readonly stale: boolean;
  /** The stale feeds (Kafka topics), when the server may name them (security off). */
  readonly sources?: readonly string[];
}

export interface CacheEntry {
  value: JsonObject;
  /** -1 when the value may be stale (after a disconnect or a gap): only a full value replaces it. */
  version: number;
  /** How many subscriptions hold this path. */
  refs: number;
}

/** The client's topic state: one entry per path, whatever number of subscriptions hold it. */
export type TopicCache = Map<string, CacheEntry>;

/** The client's own bookkeeping for one subscription. */
export interface SubscriptionCore {
  readonly selector: Selector;
  readonly handlers: SubscriptionHandlers;
  state: SubscriptionState;
  /** The id of the current server-side subscription, or null when none is requested. */
  wireId: string | null;
  /** Paths this subscription holds. */
  readonly paths: Set<string>;
  /** While re-subscribing: held paths not yet confirmed by the server; removed at `subscribed`. */
  stale: Set<string> | null;
  /** A retry scheduled after RATE_LIMITED. */
  retry: ReturnType<typeof setTimeout> | null;
  /** Compiled `options.filter`; the client routes values to subscriptions by it, as the server does. */
  filter?: Filter | null;
  maxRate?: number;
  /**
   * The resume of the request in flight: the listed paths, whether some were left out, the epoch
   * change; `bySeq` when it resumed from the position (a `partial` answer then means every topic
   * was sent, and held ones not sent are gone).
   */
  resuming?: { listed: Set<string>; truncated: boolean; epochChanged: boolean; afterReconnect: boolean; bySeq?: boolean } | null;
  /**
   * The server's position (the `seq` of the last `position` message) at which this subscription
   * holds the state, except the paths in `moved` (applied after it); null: none known (resume by
   * versions). docs/PROTOCOL.md, "Resuming".
   */
  position?: { seq: number; access?: string; moved: Set<string> } | null;
  /** How the last re-subscribe after a reconnect was answered. */
  resumed?: ResumeKind | null;
  /** The last `status` the server sent; null or absent: fresh. */
  feed?: FeedStatus | null;
  /** The last `loading` progress of the request in flight; null once it is answered (or when it never paged). */
  progress?: { sent: number; total: number } | null;
  /** Set by a re-subscribe's `subscribed`: a stale status not confirmed in the same frame is cleared. */
  feedUnconfirmed?: boolean;
}

/** The topics a subscription holds, read through from the shared cache. */
export class SubscriptionValues implements ReadonlyMap<string, JsonObject> {
  constructor(
    private readonly paths: ReadonlySet<string>,
    private readonly cache: TopicCache,
  ) {}

  get size(): number {
    return this.paths.size;
  }

  get(path: string): JsonObject | undefined {
    return this.paths.has(path) ? this.cache.get(path)?.value : undefined;
  }

  has(path: string): boolean {
    return this.paths.has(path);
  }

  forEach(cb: (value: JsonObject, path: string, map: ReadonlyMap<string, JsonObject>) => void, thisArg?: unknown): void {
    for (const [path, value] of this.entries()) cb.call(thisArg, value, path, this);
  }

  *entries(): MapIterator<[string, JsonObject]> {
    for (const path of this.paths) {
      const e = this.cache.get(path);
      if (e) yield [path, e.value];
    }
  }

  *keys(): MapIterator<string> {
    yield* this.paths;
  }

  *values(): MapIterator<JsonObject> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[string, JsonObject]> {
    return this.entries();
  }
}

/**
 * A live selection of topics.
 * @example
 * const sub = client.subscribe('orders/**', { onValue: (path, value) => render(path, value) });
 * sub.values.get('orders/7/42'); // the current value
 * sub.unsubscribe();
 */
export class Subscription {
  /** The topics this subscription currently holds, by path. */
  readonly values: ReadonlyMap<string, JsonObject>;

  /** @internal Created by TidewireClient.subscribe(). */
  constructor(
    private readonly core: SubscriptionCore,
    cache: TopicCache,
    private readonly release: (core: SubscriptionCore) => void,
  ) {
    this.values = new SubscriptionValues(core.paths, cache);
  }

  get selector(): string {
    return this.core.selector.text;
  }

  /** The filter, as given. */
  get filter(): string | undefined {
    return this.core.filter?.text;
  }

  /** How the subscription was last resumed after a reconnect (null before any reconnect). */
  get resumed(): ResumeKind | null {
    return this.core.resumed ?? null;
  }

  /** True while the server says the feed behind this subscription is stale (see onStatus). */
  get stale(): boolean {
    return this.core.feed?.stale ?? false;
  }

  get state(): SubscriptionState {
    return this.core.state;
  }

  /** While a large answer arrives in pages: how far it is (see onProgress); null otherwise. */
  get progress(): { readonly sent: number; readonly total: number } | null {
    return this.core.progress ?? null;
  }

  /** True when `values` holds everything the server has and changes are flowing. */
  get live(): boolean {
    return this.core.state === 'live';
  }

  /** Stops the subscription; its handlers are not called again. */
  unsubscribe(): void {
    this.release(this.core);
  }
}

/**
 * A subscription as the application sees it, and the state the client keeps for it. Topic values
 * are stored once per client (TopicCache); a subscription holds only the set of paths it covers,
 * and its `values` map is a view over the cache.
 *
 * States: pending ──subscribed──▶ live ──gap or reconnect──▶ resyncing ──subscribed──▶ live;
 * any ──unsubscribe()──▶ closed; pending/resyncing ──refused by the server──▶ failed.
 */
import type { JsonObject } from '../services/json.ts';
import type { Selector } from '../services/topics/selector.ts';
import type { TidewireClientError } from './errors.ts';

export type SubscriptionState = 'pending' | 'live' | 'resyncing' | 'closed' | 'failed';

export interface SubscriptionHandlers {
  /** A topic's value is new to this subscription or changed. Not called for values that did not change (e.g. after a reconnect). */
  onValue?(path: string, value: JsonObject, version: number): void;
  /** A topic this subscription held is gone. */
  onRemoval?(path: string): void;
  /** Every value the server had is in `values` and changes are flowing (again after each re-subscribe). */
  onLive?(): void;
  /** The server refused the subscription, or a handler threw. */
  onError?(error: TidewireClientError): void;
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

  get state(): SubscriptionState {
    return this.core.state;
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

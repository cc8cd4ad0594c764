/**
 * React bindings for the tidewire client: live topic values and the connection state as hook
 * results, through useSyncExternalStore (React 18 or later; `react` is a peer dependency of this
 * module only — the rest of the SDK does not need it). The hooks do not connect the client:
 * call `client.connect()` once, e.g. where the client is created.
 *
 * @example
 * const client = new TidewireClient({ url: `ws://${location.host}/ws` });
 * void client.connect();
 *
 * function Orders({ customer }: { customer: number }) {
 *   const { topics, live, state } = useTopics(client, `orders/${customer}/*`);
 *   if (!live) return <p>{state === 'open' ? 'Loading…' : `Connection: ${state}`}</p>;
 *   return <ul>{[...topics].map(([path, o]) => <li key={path}>{String(o.item)}: {String(o.status)}</li>)}</ul>;
 * }
 */
import { useMemo, useSyncExternalStore } from 'react';
import type { JsonObject } from '../core/json.ts';
import type { TidewireClient } from './client.ts';
import type { ConnectionState } from './connection-state.ts';
import type { TidewireClientError } from './errors.ts';
import { type TopicsSnapshot, TopicsStore } from './react-store.ts';

export { TopicsStore, type TopicsSnapshot } from './react-store.ts';

export interface UseTopicsOptions {
  /** When false, nothing is subscribed and `topics` stays empty (e.g. until the user picks something). Default true. */
  enabled?: boolean;
}

export interface TopicsResult {
  /** The matching topics by path; a new Map whenever one of them changes, so it can be a memo dependency. */
  topics: ReadonlyMap<string, JsonObject>;
  /** True once `topics` holds everything the server has for the selector, while changes are flowing. */
  live: boolean;
  state: ConnectionState;
  /**
   * While a large subscription arrives in pages: `sent` of `total` topics so far (show
   * "loading 43,000 of 100,000" instead of a spinner); null otherwise.
   */
  progress: { readonly sent: number; readonly total: number } | null;
  /** Set when the server or the client refused the selector (e.g. INVALID_SELECTOR). */
  error: TidewireClientError | null;
}

export interface TopicResult {
  /** The topic's value, or undefined while it is not (yet) known or after it was removed. */
  value: JsonObject | undefined;
  version: number | undefined;
  /** True once the server has answered for the topic: `value` undefined then means it does not exist. */
  live: boolean;
  state: ConnectionState;
  error: TidewireClientError | null;
}

const DISABLED = { subscribe: () => () => {}, getSnapshot: () => undefined };

/** Server rendering has no connection: an empty, not-live result. */
const serverSnapshot = (client: TidewireClient): TopicsSnapshot => ({ topics: new Map(), versions: new Map(), live: false, state: client.state, progress: null, error: null });

function useStore(client: TidewireClient, selector: string, enabled: boolean): TopicsSnapshot | undefined {
  const store = useMemo(() => (enabled ? new TopicsStore(client, selector) : null), [client, selector, enabled]);
  const server = useMemo(() => serverSnapshot(client), [client]);
  const s = store ?? DISABLED;
  return useSyncExternalStore(s.subscribe, s.getSnapshot, store ? () => server : DISABLED.getSnapshot);
}

/**
 * Every topic matching `selector` (`orders/**`, `orders/*\/42`, a plain path), kept live.
 * Changing `selector` unsubscribes the old one and subscribes the new one.
 */
export function useTopics(client: TidewireClient, selector: string, options: UseTopicsOptions = {}): TopicsResult {
  const snap = useStore(client, selector, options.enabled ?? true);
  return useMemo(
    () => ({ topics: snap?.topics ?? new Map(), live: snap?.live ?? false, state: snap?.state ?? client.state, progress: snap?.progress ?? null, error: snap?.error ?? null }),
    [snap, client],
  );
}

/**
 * One topic's live value, by its path (`orders/7/42`). A path is subscribed as a selector, so a
 * path with a segment a selector cannot hold (`~`, the encoding of null) reports INVALID_SELECTOR.
 */
export function useTopic(client: TidewireClient, path: string): TopicResult {
  const snap = useStore(client, path, true)!;
  return useMemo(
    () => ({ value: snap.topics.get(path), version: snap.versions.get(path), live: snap.live, state: snap.state, error: snap.error }),
    [snap, path],
  );
}

/**
 * The external store behind the React hooks, free of React so it can be tested on its own: one
 * subscription for a selector, opened when the first listener attaches and closed when the last
 * detaches (so React's StrictMode double mount and unmounting leave nothing behind), and an
 * immutable snapshot rebuilt at most once per burst of messages.
 */
import type { JsonObject } from '../core/json.ts';
import type { TidewireClient } from './client.ts';
import type { ConnectionState } from './connection-state.ts';
import { TidewireClientError } from './errors.ts';
import type { Subscription } from './subscription.ts';

export interface TopicsSnapshot {
  /** Every topic the selector matches, by path, in the order the server first sent them. A new Map after each change. */
  readonly topics: ReadonlyMap<string, JsonObject>;
  /** Each topic's version (comparable within one server epoch). */
  readonly versions: ReadonlyMap<string, number>;
  /** True when `topics` holds everything the server has for the selector and changes are flowing. */
  readonly live: boolean;
  readonly state: ConnectionState;
  /** While a large subscription arrives in pages: how far it is (`sent` of `total` topics); null otherwise. */
  readonly progress: { readonly sent: number; readonly total: number } | null;
  /** Why the subscription was refused (e.g. INVALID_SELECTOR); the hook does not throw. */
  readonly error: TidewireClientError | null;
}

const EMPTY_TOPICS: ReadonlyMap<string, JsonObject> = new Map();
const EMPTY_VERSIONS: ReadonlyMap<string, number> = new Map();

export class TopicsStore {
  private readonly listeners = new Set<() => void>();
  private subscription: Subscription | null = null;
  private stopState: (() => void) | null = null;
  private readonly versions = new Map<string, number>();
  private error: TidewireClientError | null = null;
  private snapshot: TopicsSnapshot;
  private dirty = false;
  private notifyQueued = false;

  constructor(
    private readonly client: TidewireClient,
    readonly selector: string,
  ) {
    this.snapshot = { topics: EMPTY_TOPICS, versions: EMPTY_VERSIONS, live: false, state: client.state, progress: null, error: null };
  }

  /** For useSyncExternalStore: attaches a listener; the first one opens the subscription. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.open();
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0) this.closeSubscription();
    };
  };

  /** For useSyncExternalStore: the same object until something changed. */
  readonly getSnapshot = (): TopicsSnapshot => {
    if (this.dirty) {
      this.dirty = false;
      const sub = this.subscription;
      const topics = sub ? new Map(sub.values) : EMPTY_TOPICS;
      this.snapshot = {
        topics,
        versions: sub ? new Map(this.versions) : EMPTY_VERSIONS,
        live: sub?.live === true && this.client.state === 'open',
        state: this.client.state,
        progress: sub?.progress ?? null,
        error: this.error,
      };
    }
    return this.snapshot;
  };

  private open(): void {
    this.stopState = this.client.onState(() => this.changed());
    this.error = null;
    try {
      this.subscription = this.client.subscribe(this.selector, {
        onValue: (path, _value, version) => {
          this.versions.set(path, version);
          this.changed();
        },
        onRemoval: (path) => {
          this.versions.delete(path);
          this.changed();
        },
        onLive: () => this.changed(),
        onProgress: () => this.changed(),
        onError: (err) => {
          this.error = err;
          this.changed();
        },
      });
    } catch (err) {
      if (!(err instanceof TidewireClientError)) throw err;
      this.error = err;
    }
    this.changed();
  }

  private closeSubscription(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
    this.stopState?.();
    this.stopState = null;
    this.versions.clear();
    this.dirty = true;
  }

  /** Marks the snapshot stale and tells React once per microtask: a frame of 500 deltas is one render. */
  private changed(): void {
    this.dirty = true;
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const l of [...this.listeners]) l();
    });
  }
}

/**
 * A session's topics whose next update is not sent as it happens but later, merged: the topics of
 * a throttled subscription between two sends, every topic of a client that fell behind, and the
 * few topics whose client holds a version other than the current one. One entry per topic at most,
 * whatever happens (so a session's merged state is bounded by the topics it subscribes to); an
 * entry says what the client holds, and the update is rendered from the current state when the
 * entry is released (session-delivery.ts).
 *
 * Entries waiting for a throttle interval sit in 10 ms time buckets, so the timer that releases
 * them fires at most 100 times a second and visits only the entries that are due.
 */
import type { JsonObject } from '../../core/json.ts';

/** Granularity of throttle release times. */
export const TICK_MS = 10;

export type PendingState =
  /** Nothing to send; kept for its throttle window, or because the client holds an older version. */
  | 'settled'
  /** Has an update to send at the next flush. */
  | 'ready'
  /** Has an update to send when its throttle window ends. */
  | 'waiting';

export interface PendingTopic {
  readonly path: string;
  /** Does the client hold the topic? */
  held: boolean;
  /** The version the client holds: > 0 when known exactly, -1 when held but not known (projected sessions skip hidden changes). */
  heldVersion: number;
  /** The (unprojected) value whose projection the client holds; null when it holds nothing. */
  heldValue: JsonObject | null;
  /** Version of the latest change seen for the topic (a removal's version, once the topic is gone). */
  version: number;
  state: PendingState;
  /** No update goes out before this time (ms); 0 when the topic is not throttled. */
  until: number;
  /** Minimum time between two updates of the topic (ms); 0 when not throttled. */
  interval: number;
  /** The bucket the entry is in (0: none). */
  bucket: number;
}

export class PendingTopics {
  private readonly byPath = new Map<string, PendingTopic>();
  private ready: PendingTopic[] = [];
  private readonly buckets = new Map<number, PendingTopic[]>();

  get size(): number {
    return this.byPath.size;
  }

  /** Entries with an update to send at the next flush. */
  get readyCount(): number {
    return this.ready.length;
  }

  get(path: string): PendingTopic | undefined {
    return this.byPath.get(path);
  }

  values(): IterableIterator<PendingTopic> {
    return this.byPath.values();
  }

  add(entry: PendingTopic): void {
    this.byPath.set(entry.path, entry);
    if (entry.state === 'ready') this.ready.push(entry);
    else if (entry.until > 0) this.schedule(entry);
  }

  delete(entry: PendingTopic): void {
    if (this.byPath.get(entry.path) === entry) this.byPath.delete(entry.path);
    entry.state = 'settled';
  }

  /**
   * The topic changed. Returns true when the entry already had an update pending (the change is
   * merged into it: a conflation).
   */
  touch(entry: PendingTopic, now: number): boolean {
    if (entry.state !== 'settled') return true;
    if (entry.until > now) {
      entry.state = 'waiting';
      this.schedule(entry);
    } else {
      entry.state = 'ready';
      this.ready.push(entry);
    }
    return false;
  }

  /** Starts a throttle window: the entry's next update waits until `until`. */
  hold(entry: PendingTopic, until: number): void {
    entry.until = until;
    this.schedule(entry);
  }

  /** Takes the entries to release now (still registered: the caller settles or deletes each). */
  takeReady(): PendingTopic[] {
    const out = this.ready;
    this.ready = [];
    return out.filter((e) => e.state === 'ready' && this.byPath.get(e.path) === e);
  }

  /** Earliest bucket time, or 0 when none. */
  nextDue(): number {
    let min = 0;
    for (const t of this.buckets.keys()) if (min === 0 || t < min) min = t;
    return min;
  }

  /**
   * Moves waiting entries whose window ended to the ready list; calls `expired` for settled ones
   * whose window ended (the caller deletes those it no longer needs). Returns true when some became ready.
   */
  due(now: number, expired: (entry: PendingTopic) => void): boolean {
    let moved = false;
    for (const [t, list] of this.buckets) {
      if (t > now) continue;
      this.buckets.delete(t);
      for (const e of list) {
        if (e.bucket !== t || this.byPath.get(e.path) !== e) continue;
        e.bucket = 0;
        if (e.until > now) {
          this.schedule(e); // its window was extended since it was put in this bucket
          continue;
        }
        if (e.state === 'waiting') {
          e.state = 'ready';
          this.ready.push(e);
          moved = true;
        } else if (e.state === 'settled') {
          expired(e);
        }
      }
    }
    return moved;
  }

  clear(): void {
    this.byPath.clear();
    this.ready = [];
    this.buckets.clear();
  }

  private schedule(entry: PendingTopic): void {
    const t = Math.ceil(entry.until / TICK_MS) * TICK_MS;
    if (entry.bucket === t) return;
    entry.bucket = t;
    const list = this.buckets.get(t);
    if (list) list.push(entry);
    else this.buckets.set(t, [entry]);
  }
}

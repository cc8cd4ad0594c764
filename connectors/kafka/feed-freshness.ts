/**
 * How long ago each mapped Kafka topic (a feed) was last heard from: a record on it, or a record
 * on its mapping's heartbeat topic (Debezium's `__debezium-heartbeat.<prefix>`). Past
 * `staleAfterMs` the feed is stale: its producer (a Debezium task gone FAILED, a stopped job) may
 * be down, and the topics built from it may be old. Times are the connector's clock when the
 * record was fetched, not the record's timestamp: producers' clocks are not ours.
 */
import type { StaleFeed } from '../../core/ingest.ts';

export interface FeedAge {
  /** The Kafka topic. */
  readonly topic: string;
  /** The source name its topics carry (Topic.source), e.g. `kafka:orders`. */
  readonly source: string;
  /** Milliseconds since its last record or heartbeat (or since the connector started). */
  readonly ageMs: number;
  readonly stale: boolean;
}

export class FeedFreshness {
  /** Kafka topic → when it was last heard from. */
  private readonly seen = new Map<string, number>();
  /** Heartbeat topic → the Kafka topics it vouches for. */
  private readonly vouches = new Map<string, string[]>();
  private readonly sources = new Map<string, string>();
  private staleNow = new Set<string>();

  constructor(
    /** Null: never stale. */
    private readonly staleAfterMs: number | null,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The feeds to follow, with the source name of each, and the heartbeat topics; every clock
   * starts now (a restart of the connector starts them again).
   */
  begin(feeds: ReadonlyMap<string, string>, heartbeats: ReadonlyMap<string, readonly string[]>): void {
    const at = this.now();
    this.seen.clear();
    this.sources.clear();
    this.vouches.clear();
    this.staleNow = new Set();
    for (const [topic, source] of feeds) {
      this.seen.set(topic, at);
      this.sources.set(topic, source);
    }
    for (const [hb, topics] of heartbeats) this.vouches.set(hb, topics.filter((t) => this.seen.has(t)));
  }

  isHeartbeat(topic: string): boolean {
    return this.vouches.has(topic);
  }

  /** A record on `topic` (a feed or a heartbeat topic) was fetched. True when that made a stale feed fresh. */
  heard(topic: string): boolean {
    const at = this.now();
    const feeds = this.vouches.get(topic);
    if (feeds === undefined) return this.touch(topic, at);
    let changed = false;
    for (const f of feeds) changed = this.touch(f, at) || changed;
    return changed;
  }

  /** Re-evaluates every feed against the threshold; true when the set of stale feeds changed. */
  check(): boolean {
    if (this.staleAfterMs === null) return false;
    const at = this.now();
    let changed = false;
    for (const [topic, t] of this.seen) {
      const stale = at - t >= this.staleAfterMs;
      if (stale === this.staleNow.has(topic)) continue;
      if (stale) this.staleNow.add(topic);
      else this.staleNow.delete(topic);
      changed = true;
    }
    return changed;
  }

  /** The feeds found stale by the last check() (a record since then removes its feed at once). */
  stale(): StaleFeed[] {
    const at = this.now();
    return [...this.staleNow].sort().map((feed) => ({ feed, source: this.sources.get(feed)!, ageMs: at - this.seen.get(feed)! }));
  }

  ages(): FeedAge[] {
    const at = this.now();
    return [...this.seen].map(([topic, t]) => ({ topic, source: this.sources.get(topic)!, ageMs: at - t, stale: this.staleNow.has(topic) }));
  }

  private touch(topic: string, at: number): boolean {
    if (!this.seen.has(topic)) return false;
    this.seen.set(topic, at);
    return this.staleNow.delete(topic);
  }
}

/**
 * Topics kept in the durable store, off the JS heap (issue #12, item 7): the store is the index
 * (its keys are paths in byte order, so a selector is a range read), and the heap holds only
 * - the topics changed or removed since the last durable write (pinned: the store does not have
 *   them yet; bounded by the state journal's back-pressure), and
 * - a bounded cache of the topics changed last (recent values, for diffing the next change and for
 *   filters), each dropped oldest first.
 * Everything else is read from the store when asked for (a memory-mapped read, then one decode), so
 * heap and start-up time no longer grow with the table.
 *
 * Consistency: a pinned topic is the truth for its path until the write that holds its change is
 * durable (`durable(seq)`): only then does the store's copy equal it, and it may leave the heap.
 * Reads of the store see every durable write (lmdb renews its read transaction at each commit).
 */
import { type Selector, matchesSegments } from '../../core/selector.ts';
import type { Topic } from '../../core/topic.ts';
import type { LoadedTopic, TopicIndex } from './topic-index.ts';

/** The durable store as this index reads it (services/state's LmdbStateStore has these members). */
export interface TopicRecords {
  /** Topics stored (durable). */
  readonly topicCount: number;
  get(path: string): LoadedTopic | undefined;
  /**
   * Stored topics in path order (UTF-8 byte order) from `start` (inclusive) to `end` (exclusive),
   * decoding only those whose path `accept` takes.
   */
  topics(start?: string, end?: string, accept?: (path: string) => boolean): IterableIterator<LoadedTopic>;
}

export interface StoredIndexOptions {
  /** Recently changed topics kept on the heap once durable. Default 10,000. */
  readonly cacheTopics?: number;
}

export const STORED_INDEX_DEFAULTS = { cacheTopics: 10_000 } as const;

export class StoredTopicIndex implements TopicIndex {
  /** Changed since the last durable write: the truth for their paths. */
  private readonly pinned = new Map<string, Topic>();
  /** Removed since the last durable write, with the batch that removed them. */
  private readonly removed = new Map<string, number>();
  /**
   * Pins in batch order, to release at `durable` (an entry may be stale: the map says): the batch
   * seq and the path of each, in two arrays (no object per change).
   */
  private queueSeqs: number[] = [];
  private queuePaths: string[] = [];
  private head = 0;
  /** Durable topics changed last. */
  private readonly cache = new Map<string, Topic>();
  /**
   * The cache's topics in the order they came, as a ring: the slot to overwrite next is the
   * oldest. (Not the Map's own order: V8 leaves a deleted entry in place until the table is
   * rebuilt, so taking a Map's first key after deleting the ones before costs a scan past them —
   * 25× slower over 1M changes than this ring.) A slot whose topic is no longer the cached one
   * (changed again, or removed) is skipped.
   */
  private ring: Array<Topic | undefined>;
  private ringNext = 0;
  private readonly cacheCapacity: number;
  private count: number;

  constructor(
    private records: TopicRecords,
    options: StoredIndexOptions = {},
  ) {
    this.cacheCapacity = options.cacheTopics ?? STORED_INDEX_DEFAULTS.cacheTopics;
    if (!Number.isInteger(this.cacheCapacity) || this.cacheCapacity < 0) throw new RangeError(`cacheTopics must be an integer ≥ 0, not ${this.cacheCapacity}`);
    this.count = records.topicCount;
    this.ring = new Array(this.cacheCapacity);
  }

  /**
   * Reads from `records` from now on (the same store, opened again after a stop): only when
   * everything changed was made durable.
   */
  attach(records: TopicRecords): void {
    if (this.pinned.size > 0 || this.removed.size > 0) throw new Error('StoredTopicIndex.attach: changes are not durable yet');
    this.records = records;
    this.count = records.topicCount;
    this.cache.clear();
    this.ring = new Array(this.cacheCapacity);
    this.ringNext = 0;
  }

  get size(): number {
    return this.count;
  }

  /** Topics on the heap: pinned (not durable yet) and cached. */
  get onHeap(): { readonly pinned: number; readonly cached: number } {
    return { pinned: this.pinned.size + this.removed.size, cached: this.cache.size };
  }

  get(path: string): Topic | undefined {
    const pinned = this.pinned.get(path);
    if (pinned !== undefined) return pinned;
    if (this.removed.has(path)) return undefined;
    return this.cache.get(path) ?? (this.records.get(path) as Topic | undefined);
  }

  add(topic: Topic): void {
    this.count++;
    this.removed.delete(topic.path);
    this.pin(topic);
  }

  changed(topic: Topic): void {
    this.pin(topic);
  }

  delete(path: string, seq: number): void {
    this.count--;
    this.pinned.delete(path);
    this.cache.delete(path);
    this.removed.set(path, seq);
    this.queueSeqs.push(seq);
    this.queuePaths.push(path);
  }

  /** The store holds every batch up to `seq`: what they changed may leave the heap. */
  durable(seq: number): void {
    const seqs = this.queueSeqs;
    const paths = this.queuePaths;
    while (this.head < seqs.length && seqs[this.head] <= seq) {
      const path = paths[this.head++];
      const t = this.pinned.get(path);
      if (t !== undefined && (t.seq ?? 0) <= seq) {
        this.pinned.delete(path);
        this.remember(t);
      } else if ((this.removed.get(path) ?? Infinity) <= seq) {
        this.removed.delete(path);
      }
    }
    if (this.head === seqs.length) {
      this.queueSeqs = [];
      this.queuePaths = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > seqs.length) {
      this.queueSeqs = seqs.slice(this.head);
      this.queuePaths = paths.slice(this.head);
      this.head = 0;
    }
  }

  forEachMatching(selector: Selector, visit: (topic: Topic) => void): void {
    for (const t of this.matching(selector)) visit(t);
  }

  *matching(selector: Selector): IterableIterator<Topic> {
    if (selector.exact) {
      const t = this.get(selector.text);
      if (t) yield t;
      return;
    }
    const [start, end] = rangeOf(selector);
    // Not durable yet first (the store has an older copy, or none): the store's copies of these are skipped.
    for (const t of [...this.pinned.values()]) {
      if ((start === undefined || t.path.startsWith(start)) && matchesSegments(selector, t.path.split('/'))) yield t;
    }
    // `a/b/**`: every path in the range is under `a/b/`, so it matches without a look at its segments.
    const whole = start !== undefined && selector.descendants && !selector.segments.includes('*');
    const accept = (path: string): boolean => !this.pinned.has(path) && !this.removed.has(path) && (whole || matchesSegments(selector, path.split('/')));
    for (const stored of this.records.topics(start, end, accept)) yield this.cache.get(stored.path) ?? (stored as Topic);
  }

  *values(): IterableIterator<Topic> {
    yield* [...this.pinned.values()];
    const accept = (path: string): boolean => !this.pinned.has(path) && !this.removed.has(path);
    for (const stored of this.records.topics(undefined, undefined, accept)) yield this.cache.get(stored.path) ?? (stored as Topic);
  }

  private pin(topic: Topic): void {
    this.cache.delete(topic.path);
    this.pinned.set(topic.path, topic);
    this.queueSeqs.push(topic.seq ?? 0);
    this.queuePaths.push(topic.path);
  }

  private remember(topic: Topic): void {
    if (this.cacheCapacity === 0) return;
    const oldest = this.ring[this.ringNext];
    if (oldest !== undefined && this.cache.get(oldest.path) === oldest) this.cache.delete(oldest.path);
    this.ring[this.ringNext] = topic;
    this.ringNext = this.ringNext + 1 === this.cacheCapacity ? 0 : this.ringNext + 1;
    this.cache.set(topic.path, topic);
  }
}

/**
 * The key range holding every path the selector can match: the paths under its literal segments
 * before the first `*` (`orders/7/**` → [`orders/7/`, `orders/70`): '0' follows '/').
 */
export function rangeOf(selector: Selector): [string | undefined, string | undefined] {
  const literal: string[] = [];
  for (const s of selector.segments) {
    if (s === '*') break;
    literal.push(s);
  }
  if (literal.length === 0) return [undefined, undefined];
  const prefix = `${literal.join('/')}/`;
  return [prefix, `${prefix.slice(0, -1)}0`];
}

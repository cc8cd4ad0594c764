/**
 * The recent changes of every topic, so a reconnecting client can be sent only what changed
 * since the version it holds (docs/PROTOCOL.md, "Resuming"). Bounded twice: at most `perTopic`
 * changes per topic, and at most `maxBytes` (the patches' JSON size plus a fixed overhead per
 * entry) over all topics, oldest first. Appending is O(1); eviction is amortised O(1).
 *
 * It also remembers the last version of removed paths (bounded by `tombstones`), so a topic
 * created again at the same path continues its numbering and a (path, version) pair names one
 * state for the whole epoch: a client holding version 7 of a deleted row can never be sent a
 * delta meant for version 7 of the row inserted again at the same key.
 */
import type { PatchOp } from '../../core/delta.ts';

export interface HistoryOptions {
  /** Changes kept per topic. 0 turns the history off. Default 64. */
  perTopic?: number;
  /** Approximate bytes kept over all topics. Default 32 MiB. */
  maxBytes?: number;
  /** Removed paths whose last version is remembered. Default 100,000. */
  tombstones?: number;
}

export interface HistoryStart {
  /**
   * A topic created at a path not remembered starts after this version: the highest version any
   * removed path reached in the epoch (kept with durable state, so a restart that forgets the
   * tombstones never reuses a (path, version) pair). Default 0.
   */
  versionFloor?: number;
}

export const HISTORY_DEFAULTS: Required<HistoryOptions> = { perTopic: 64, maxBytes: 32 * 1024 * 1024, tombstones: 100_000 };

/** What one entry costs beyond its patch's JSON (the object, its slot in two arrays). */
const ENTRY_OVERHEAD = 64;

interface Entry {
  readonly path: string;
  readonly version: number;
  /** The seq of the batch that made this version (0: unknown). */
  readonly seq: number;
  /** The seq of the change that made `version - 1` (0: unknown). */
  readonly prevSeq: number;
  readonly patch: readonly PatchOp[];
  readonly bytes: number;
  dead: boolean;
}

export class TopicHistory {
  readonly perTopic: number;
  readonly maxBytes: number;
  readonly maxTombstones: number;
  /** Approximate bytes held. */
  bytes = 0;
  private readonly byPath = new Map<string, Entry[]>();
  /** Every live entry, oldest first, from `head` on (dead ones are skipped when reached). */
  private fifo: Entry[] = [];
  private head = 0;
  private readonly tombstones = new Map<string, number>();
  /** The highest version of a tombstone that was forgotten (0: none yet). */
  private forgotten = 0;
  /** Entries not dead, to know when the fifo is mostly dead ones (the per-topic cap kills entries mid-fifo). */
  private live = 0;

  constructor(options: HistoryOptions = {}, start: HistoryStart = {}) {
    const o = { ...HISTORY_DEFAULTS, ...stripUndefined(options) };
    const floor = start.versionFloor ?? 0;
    if (!Number.isSafeInteger(floor) || floor < 0) throw new RangeError(`history versionFloor must be an integer ≥ 0, not ${floor}`);
    this.forgotten = floor;
    for (const [k, v] of Object.entries(o)) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`history ${k} must be an integer ≥ 0, not ${v}`);
    }
    this.perTopic = o.perTopic;
    this.maxBytes = o.maxBytes;
    this.maxTombstones = o.tombstones;
  }

  /** Changes held, over all topics. */
  get size(): number {
    let n = 0;
    for (const list of this.byPath.values()) n += list.length;
    return n;
  }

  /**
   * Records the patch that made `version` of `path` out of `version - 1`. `json` is its serialized
   * length; `seq` the batch it was applied in, `prevSeq` the one that made `version - 1` (for versionAt).
   */
  record(path: string, version: number, patch: readonly PatchOp[], json: number, seq = 0, prevSeq = 0): void {
    if (this.perTopic === 0) return;
    let list = this.byPath.get(path);
    if (!list) this.byPath.set(path, (list = []));
    else if (list.length > 0 && list[list.length - 1].version !== version - 1) this.kill(list, list.length); // never a hole
    const entry: Entry = { path, version, seq, prevSeq, patch, bytes: json + ENTRY_OVERHEAD, dead: false };
    list.push(entry);
    this.fifo.push(entry);
    this.live++;
    this.bytes += entry.bytes;
    if (list.length > this.perTopic) this.kill(list, list.length - this.perTopic);
    while (this.bytes > this.maxBytes && this.head < this.fifo.length) this.evictOldest();
    // Keep the fifo's length within twice the live entries (amortised O(1) per append).
    const held = this.fifo.length - this.head;
    if (held > 1024 && held > 2 * this.live) {
      this.fifo = this.fifo.slice(this.head).filter((e) => !e.dead);
      this.head = 0;
    }
  }

  /**
   * The patches turning `version` of `path` into `current`, oldest first ([] when equal), or null
   * when the history no longer reaches back to `version`.
   */
  since(path: string, version: number, current: number): ReadonlyArray<readonly PatchOp[]> | null {
    if (version === current) return [];
    if (version > current) return null;
    const list = this.byPath.get(path);
    if (!list || list.length === 0 || list[list.length - 1].version !== current) return null;
    const first = list[0].version;
    if (version + 1 < first) return null;
    const out: Array<readonly PatchOp[]> = [];
    for (let i = version + 1 - first; i < list.length; i++) out.push(list[i].patch);
    return out;
  }

  /**
   * The version `path` had once batch `seq` was applied, when the history still knows it: the
   * latest change at or before `seq` it holds. Null when it holds none (the topic was created
   * after `seq`, or its changes up to then are forgotten): the caller sends the value instead.
   * Only for a topic whose last change is after `seq` (otherwise its current version is the answer).
   */
  versionAt(path: string, seq: number): number | null {
    const list = this.byPath.get(path);
    if (!list || list.length === 0) return null;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid].seq !== 0 && list[mid].seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) return list[lo - 1].version;
    // Before the oldest change held: known when the change before it was at or before `seq`.
    const first = list[0];
    return first.prevSeq !== 0 && first.prevSeq <= seq ? first.version - 1 : null;
  }

  /** The topic at `path` was removed at `version`: forget its changes, remember the version. */
  removed(path: string, version: number): void {
    const list = this.byPath.get(path);
    if (list) {
      this.kill(list, list.length);
      this.byPath.delete(path);
    }
    if (this.maxTombstones === 0) {
      this.forgotten = Math.max(this.forgotten, version);
      return;
    }
    this.tombstones.delete(path);
    this.tombstones.set(path, version);
    if (this.tombstones.size > this.maxTombstones) {
      const [oldPath, oldVersion] = this.tombstones.entries().next().value!;
      this.tombstones.delete(oldPath);
      this.forgotten = Math.max(this.forgotten, oldVersion);
    }
  }

  /**
   * The first version of a topic created at `path`: after the version it had when it was last
   * removed, or, when that was forgotten, after every forgotten one (usually 1).
   */
  firstVersion(path: string): number {
    const removedAt = this.tombstones.get(path);
    if (removedAt !== undefined) {
      this.tombstones.delete(path);
      return removedAt + 1;
    }
    return this.forgotten + 1;
  }

  /** The version `path` had when it was removed, if still remembered. */
  removedVersion(path: string): number | undefined {
    return this.tombstones.get(path);
  }

  /** Drops the `count` oldest entries of one topic's list. */
  private kill(list: Entry[], count: number): void {
    for (let i = 0; i < count; i++) {
      const e = list[i];
      e.dead = true;
      this.live--;
      this.bytes -= e.bytes;
    }
    list.splice(0, count);
  }

  private evictOldest(): void {
    const e = this.fifo[this.head];
    this.fifo[this.head++] = undefined as unknown as Entry;
    if (e.dead) return;
    // Lists grow in version order and the fifo in append order, so e is its list's oldest.
    const list = this.byPath.get(e.path)!;
    this.kill(list, 1);
    if (list.length === 0) this.byPath.delete(e.path);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

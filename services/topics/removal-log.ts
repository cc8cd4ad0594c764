/**
 * The removals of the epoch's recent batches, so a client resuming from a position (the `seq` of
 * the last batch it applied, docs/PROTOCOL.md "Resuming") is told which of the topics it held are
 * gone. Bounded: at most `capacity` removals, oldest forgotten first; `floor` is the seq of the
 * newest one forgotten, and a position below it cannot be answered from the log (a removal after
 * it may have been forgotten): such a resume is answered whole (`resumed: "partial"`).
 *
 * Entries arrive in seq order (batches are applied in order), so `since` is a binary search and
 * a walk of what followed.
 */

export interface RemovalEntry {
  /** The seq of the batch that removed the topic. */
  readonly seq: number;
  readonly path: string;
  /** The removal's version (one past the topic's last). */
  readonly version: number;
  readonly tenant: string;
}

/** Removals remembered by default: as many as the history's tombstones. */
export const REMOVAL_LOG_DEFAULT_CAPACITY = 100_000;

export class RemovalLog {
  private entries: RemovalEntry[] = [];
  private head = 0;
  private _floor: number;

  constructor(
    readonly capacity = REMOVAL_LOG_DEFAULT_CAPACITY,
    /** The seq below which the log does not reach (a restored log's floor; 0: it reaches the epoch's start). */
    floor = 0,
  ) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`removal log capacity must be an integer ≥ 0, not ${capacity}`);
    if (!Number.isSafeInteger(floor) || floor < 0) throw new RangeError(`removal log floor must be an integer ≥ 0, not ${floor}`);
    this._floor = floor;
  }

  /** Positions below this cannot be answered from the log. */
  get floor(): number {
    return this._floor;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** True when every removal after `seq` is still in the log. */
  reaches(seq: number): boolean {
    return seq >= this._floor;
  }

  /** Records a removal; entries must come in seq order (equal seqs: one batch). */
  add(entry: RemovalEntry): void {
    const last = this.size > 0 ? this.entries[this.entries.length - 1].seq : this._floor;
    if (entry.seq < last) throw new RangeError(`removal log: seq ${entry.seq} comes after ${last}`);
    if (this.capacity === 0) {
      this._floor = entry.seq;
      return;
    }
    this.entries.push(entry);
    while (this.size > this.capacity) {
      this._floor = this.entries[this.head].seq;
      this.entries[this.head++] = undefined as unknown as RemovalEntry;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** The removals of batches after `seq`, oldest first (every one of them only if reaches(seq)). */
  *since(seq: number): IterableIterator<RemovalEntry> {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid].seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.entries.length; i++) yield this.entries[i];
  }

  /** Every entry held, oldest first. */
  all(): IterableIterator<RemovalEntry> {
    return this.since(-1);
  }
}

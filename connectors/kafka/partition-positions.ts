/**
 * Where this process stands in each partition, and whether the initial catch-up is done.
 *
 * `next` is the offset of the first record not yet applied in this process: every record below
 * it is in topic state. It only moves forward, it decides where a (re)assigned partition resumes
 * (a seek to `next`, not to the committed offset, which may lag it after a failed commit or lead
 * it after another group member consumed the partition), and a record below it is never applied
 * again, so a redelivery cannot make a value go back in time.
 *
 * Offsets are kept as numbers: exact up to 2^53, which no partition reaches.
 */

/** Where a partition's reading began at start. */
export type StartedFrom = 'stored' | 'earliest' | 'committed' | 'end';

export interface PartitionPosition {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  /** The name its position is stored under with durable state (`kafka:<topic>/<partition>`). */
  readonly name: string;
  /** Where to read from the first time this process gets the partition (stored, earliest, or committed). */
  readonly start: number | undefined;
  /** Which of those `start` is; undefined for a partition created after start. */
  readonly from: StartedFrom | undefined;
  /** End offset when the connector started: the catch-up is done once `next` reaches it. */
  readonly target: number;
  next: number | undefined;
  /** The high watermark last seen in a fetch. */
  high: number;
  /** The offset last committed for the group, for stats. */
  committed: number | undefined;
}

export interface Seek {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/**
 * The name a partition's position is stored under with durable state (SourcePosition.name); its
 * value is the next offset to read, as decimal text.
 * @example positionName('prices', 3) === 'kafka:prices/3'
 */
export function positionName(topic: string, partition: number): string {
  return `kafka:${topic}/${partition}`;
}

export class PartitionPositions {
  private readonly byKey = new Map<string, PartitionPosition>();
  /** Keys of the partitions in the latest assignment; null before the first one. */
  private assigned: Set<string> | null = null;
  private caughtUp = false;
  private resolveCaughtUp!: () => void;
  /** Resolves once every assigned partition has reached its end offset at start. */
  readonly whenCaughtUp = new Promise<void>((r) => (this.resolveCaughtUp = r));

  /** A partition known at start: `start` is where reading begins, `end` its high watermark then. */
  add(topic: string, partition: number, start: number | undefined, end: number, from?: StartedFrom): void {
    const key = partitionKey(topic, partition);
    const name = positionName(topic, partition);
    this.byKey.set(key, { topic, partition, key, name, start, from, target: start === undefined ? 0 : end, next: undefined, high: end, committed: undefined });
  }

  get(topic: string, partition: number): PartitionPosition {
    const key = partitionKey(topic, partition);
    let p = this.byKey.get(key);
    if (!p) {
      // A partition created after start: no start offset (the client reads it from the group's
      // committed offset, or the earliest), nothing to catch up with.
      p = { topic, partition, key, name: positionName(topic, partition), start: undefined, from: undefined, target: 0, next: undefined, high: 0, committed: undefined };
      this.byKey.set(key, p);
    }
    return p;
  }

  /**
   * The group assigned these partitions (topic → partitions). Returns where each must be read
   * from: `next` for a partition this process already consumed, `start` the first time.
   */
  assign(assignment: ReadonlyMap<string, readonly number[]>): Seek[] {
    const seeks: Seek[] = [];
    this.assigned = new Set();
    for (const [topic, partitions] of assignment) {
      for (const partition of partitions) {
        const p = this.get(topic, partition);
        this.assigned.add(p.key);
        p.next ??= p.start;
        if (p.next !== undefined) seeks.push({ topic, partition, offset: p.next });
      }
    }
    this.check();
    return seeks;
  }

  /** Records of `p` below `next` are applied (or dead-lettered, or skipped on purpose). */
  advance(p: PartitionPosition, next: number): void {
    if (p.next === undefined || next > p.next) p.next = next;
    if (!this.caughtUp) this.check();
  }

  get isCaughtUp(): boolean {
    return this.caughtUp;
  }

  /**
   * Partitions of the assignment still short of their end offset at start, and the records to go;
   * null before the group assigned anything.
   */
  behind(): { partitions: number; records: number } | null {
    if (this.assigned === null) return null;
    let partitions = 0;
    let records = 0;
    for (const p of this.assignedPositions()) {
      const left = p.target - (p.next ?? p.start ?? 0);
      if (left > 0) {
        partitions++;
        records += left;
      }
    }
    return { partitions, records };
  }

  /** Known partitions not in the latest assignment: another member of the group holds them. */
  unassigned(): PartitionPosition[] {
    if (this.assigned === null) return [];
    return [...this.byKey.values()].filter((p) => !this.assigned!.has(p.key));
  }

  all(): IterableIterator<PartitionPosition> {
    return this.byKey.values();
  }

  private *assignedPositions(): Generator<PartitionPosition> {
    if (this.assigned === null) return;
    for (const key of this.assigned) yield this.byKey.get(key)!;
  }

  private check(): void {
    if (this.caughtUp || this.assigned === null) return;
    for (const p of this.assignedPositions()) if ((p.next ?? p.start ?? 0) < p.target) return;
    this.caughtUp = true;
    this.resolveCaughtUp();
  }
}

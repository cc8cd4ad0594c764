/**
 * A re-read of some Kafka topics from their earliest offset, diffed against the durable state
 * (start-offsets.ts says when one is needed). The updates their records map to are held back, the
 * last one per path, until the connector has caught up with the end offsets at start; then what is
 * held goes through SourceCheckpoints.resync and is applied as one batch, with the removal of every
 * topic of those sources the log no longer holds. Clients see one step from the stored state to the
 * log's: never a blank, never an older value on the way, nothing for a topic that did not change;
 * a path whose last record is a tombstone (or that a truncate emptied) is removed by that step.
 *
 * Held is one update per live path of the re-read topics, for as long as the catch-up takes, and
 * the last row index write per key (paths that name value fields): the re-read rebuilds those
 * indexes, which the connector marks complete once the batch is applied. The offsets of the
 * re-read partitions, and the mappings' fingerprints, are stored only once the batch is applied:
 * a crash before that re-reads again.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { IngestSink, RowWrite, SourceCheckpoints } from '../../core/ingest.ts';
import type { JsonObject } from '../../core/json.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import type { PartitionPosition } from './partition-positions.ts';
import { kafkaSourceName } from './record-mapper.ts';

/** Updates handed to the resync per synchronous step, so a large re-read does not block the event loop. */
const TAKE_CHUNK = 10_000;

export interface RereadResult {
  /** Paths the log held at the end (live or removed). */
  readonly paths: number;
  readonly changed: number;
  readonly removed: number;
}

export class TopicReread {
  private readonly latest = new Map<string, TopicUpdate>();
  /** The last row index write per source and key. */
  private readonly rows = new Map<string, RowWrite>();
  private closed = false;

  /**
   * @param topics the Kafka topics re-read
   * @param fingerprints their mappings' fingerprints by source name, stored once the re-read is applied
   */
  constructor(
    readonly topics: ReadonlySet<string>,
    private readonly checkpoints: SourceCheckpoints,
    private readonly fingerprints: Readonly<Record<string, string>>,
  ) {}

  /** True while the records of `topic` are to be held here rather than applied. */
  covers(topic: string): boolean {
    return !this.closed && this.topics.has(topic);
  }

  /** Paths held. */
  get size(): number {
    return this.latest.size;
  }

  /** Holds mapped updates and their row index writes, in record order: the last one per path (and key) wins, a removal too. */
  take(updates: readonly TopicUpdate[], rows?: readonly RowWrite[]): void {
    for (const u of updates) {
      const prev = u.keep && u.value !== null ? this.latest.get(u.path) : undefined;
      this.latest.set(u.path, prev && prev.value !== null ? withKept(u, prev.value) : u);
    }
    if (rows !== undefined) for (const w of rows) this.rows.set(`${w.source}\u0000${w.key}`, w);
  }

  /** A truncate of `source`: everything held of it is gone (and so removed by `finish`). */
  truncate(source: string): void {
    for (const [path, u] of this.latest) if (u.source === source) this.latest.delete(path);
    for (const [key, w] of this.rows) if (w.source === source) this.rows.delete(key);
  }

  /**
   * Applies what differs from the state as one batch, removing what the log no longer holds; then
   * stores the positions of the re-read `partitions` and the fingerprints. Records of the re-read
   * topics that arrive later are applied as read (`covers` is false from now on).
   */
  async finish(sink: IngestSink, partitions: Iterable<PartitionPosition>): Promise<RereadResult> {
    if (this.closed) throw new Error('this re-read has finished');
    this.closed = true;
    const resync = this.checkpoints.resync([...this.topics].map(kafkaSourceName));
    const paths = this.latest.size;
    try {
      let chunk: TopicUpdate[] = [];
      for (const u of this.latest.values()) {
        if (u.value === null) continue; // not taken: the resync removes it, if the state has it
        chunk.push(u);
        if (chunk.length === TAKE_CHUNK) {
          resync.take(chunk);
          chunk = [];
          await yieldToLoop();
        }
      }
      resync.take(chunk);
      // The rebuilt row indexes, stored at once (still marked incomplete until the batch is applied).
      let rows: RowWrite[] = [];
      for (const w of this.rows.values()) {
        rows.push(w);
        if (rows.length === TAKE_CHUNK) {
          await resync.take([], rows);
          rows = [];
        }
      }
      if (rows.length > 0) await resync.take([], rows);
    } catch (err) {
      resync.abort();
      throw err;
    } finally {
      this.latest.clear();
      this.rows.clear();
    }
    const { changed, removed } = await resync.finish();
    for (const p of partitions) {
      if (this.topics.has(p.topic) && p.next !== undefined) await sink.apply([], { name: p.name, position: String(p.next) });
    }
    await this.checkpoints.setFingerprints(this.fingerprints);
    return { paths, changed, removed };
  }
}

/** `u` with its kept fields (Debezium's unchanged TOASTed columns) filled from the value held before it. */
function withKept(u: TopicUpdate, before: JsonObject): TopicUpdate {
  const value: JsonObject = { ...u.value! };
  const still: string[] = [];
  for (const k of u.keep!) {
    if (Object.hasOwn(before, k)) value[k] = before[k];
    else still.push(k);
  }
  const out: TopicUpdate = { path: u.path, source: u.source, value };
  if (u.tenant !== undefined) out.tenant = u.tenant;
  if (still.length > 0) out.keep = still;
  return out;
}

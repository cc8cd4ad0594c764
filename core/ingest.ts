/**
 * The ingest seam: what every connector (Postgres, Kafka) offers the service that runs it, and
 * where it hands its updates. Owned by the pipeline side; connectors implement Source and call
 * IngestSink, and know nothing above it.
 */
import type { JsonObject } from './json.ts';
import type { TopicUpdate } from './topic.ts';

export type SourceState = 'starting' | 'snapshotting' | 'streaming' | 'degraded' | 'stopped' | 'failed';

export interface SourceHealth {
  readonly name: string;
  readonly state: SourceState;
  /** What is wrong, or what the source is doing, in words an operator can act on. */
  readonly detail?: string;
  /**
   * Feeds this source follows that have gone quiet past their threshold (a Kafka topic with no
   * record or heartbeat for `kafka.staleAfterMs`): the topics built from them may be old. Absent
   * or empty: none. A source with stale feeds reports `degraded`.
   */
  readonly stale?: readonly StaleFeed[];
}

export interface StaleFeed {
  /** The feed's own name, e.g. the Kafka topic. */
  readonly feed: string;
  /** The source name its topics carry (Topic.source). */
  readonly source: string;
  /** Milliseconds since it was last heard from. */
  readonly ageMs: number;
}

/** Where a source has read up to, by the source's own name for it (`postgres`, `kafka:<topic>/<partition>`). */
export interface SourcePosition {
  readonly name: string;
  /** Opaque to everything but the source: an LSN (`0/16B3748`), an offset (`42`). */
  readonly position: string;
}

/**
 * Where a connector hands its updates. Resolves once the updates are applied and handed off (not
 * necessarily durable: see SourceCheckpoints). `position`, when given, is where the source stands
 * once these updates are applied: stored in the same state transaction as them, so state and
 * position never disagree after a crash.
 */
export interface IngestSink {
  /**
   * `rows`: the row index writes the same source changes made (RowIndex.set), stored in the same
   * state transaction as the updates, so the stored index never runs ahead of the stored topics.
   * `part`: these updates are a part of a source transaction applied in parts (too large to apply
   * at once). Clients see it only with its last part, which must come (`last`) even when it has
   * no update of its own. Applies of other sources meanwhile go out with it.
   */
  apply(updates: readonly TopicUpdate[], position?: SourcePosition, rows?: readonly RowWrite[], part?: TransactionPart): Promise<void>;
  /** Removes every topic produced by `source` (TRUNCATE). */
  removeSource(source: string, position?: SourcePosition): Promise<void>;
}

/** A part of a source transaction applied in parts (IngestSink.apply). */
export interface TransactionPart {
  /** Which source's transaction: the name of its position (`postgres`). */
  readonly transaction: string;
  /** The last part: the transaction is whole with it. */
  readonly last: boolean;
}

/**
 * What a source may ask of the durable state it feeds (services/state): where it was read up to,
 * what its mapping looked like, and when a position may be acknowledged upstream. Owned by the
 * pipeline side; a source given none keeps no position (state in memory: every start reads all).
 */
export interface SourceCheckpoints {
  /**
   * Which system a source reads (e.g. Postgres's system identifier and database): recorded with
   * the state on first use; rejects (naming state.dir and what to do) when the state was written
   * for another one, so topics and positions of one database are never resumed against another.
   */
  claim(name: string, identity: string): Promise<void>;
  /** True when the state holds any topic (a re-read must then be diffed, never applied blind). */
  holdsTopics(): boolean;
  /**
   * The topics `source` produced, as the state holds them (e.g. to rebuild a source's own indexes
   * on resume). `where`, a selector every path of the source matches (its path template with `*`
   * for each placeholder), keeps the read to that part of the state.
   */
  topicsOf(source: string, where?: string): Iterable<{ readonly path: string; readonly value: JsonObject }>;
  /**
   * The row key → topic path index of `source`, kept with the durable state; null when state is in
   * memory (the source keeps its own, rebuilt by the snapshot every start reads).
   */
  rowIndex(source: string): RowIndex | null;
  /** The position stored for `name` with the state, or null (first start, or never stored). */
  stored(name: string): string | null;
  /** Mapping fingerprints by table, as stored with the state. */
  fingerprints(): Readonly<Record<string, string>>;
  /** Records fingerprints (null forgets one), in order with the updates applied so far. */
  setFingerprints(fingerprints: Readonly<Record<string, string | null>>): Promise<void>;
  /**
   * Resolves once every update applied so far, and `position`, are durable: only then may the
   * source acknowledge `position` upstream (the LSN to Postgres, the offset to Kafka).
   */
  checkpoint(position: SourcePosition): Promise<void>;
  /**
   * A re-read of `sources` (a snapshot of tables whose state may be stale) starts. Its updates are
   * diffed against the state and held back; `finish` applies what differs, and removes the topics
   * of these sources the re-read did not produce, as one batch: clients see one step from the old
   * state to the new one, never a blank, and rows that did not change send nothing.
   */
  resync(sources: readonly string[]): Resync;
}

export interface Resync {
  /** Rows read so far (each update of the re-read), and how many differ from the state. */
  readonly read: number;
  readonly differing: number;
  /**
   * Takes updates of the re-read (synchronously diffed; nothing is applied yet), and the row index
   * writes they made (stored at once: a re-read rebuilds its tables' row indexes, which count as
   * complete only after `finish`). A promise: wait for it before reading more (the store is behind).
   */
  take(updates: readonly TopicUpdate[], rows?: readonly RowWrite[]): Promise<void> | void;
  /** Applies what differed and removes what was not read, with `position`; resolves once handed off. */
  finish(position?: SourcePosition): Promise<{ readonly changed: number; readonly removed: number }>;
  /** Drops what was held (a failed re-read, to be started over). */
  abort(): void;
}

/**
 * Where each row of a table is: row key (the key columns as JSON text) → the path of its topic.
 * A source keeps one when its paths use columns outside the row's key: an UPDATE or DELETE names
 * the row by key alone, and this is the only way to find its old topic. With durable state it is
 * stored with the state (read from disk, not held on the heap), so a restart does not rebuild it.
 */
export interface RowIndex {
  /**
   * True when it holds every row of the source's topics: it was built by a complete read of the
   * table (or from the stored topics) and kept since. False after `clear(false)` until
   * `completed()`: the source must then read the table again (or rebuild it) before streaming.
   */
  readonly complete: boolean;
  /** The path of the row with key `key`, or undefined. */
  get(key: string): string | undefined;
  /**
   * Sets (a path) or forgets (null) a row's entry. Returns the write that stores it, to be handed
   * to the sink with the updates made by the same change (IngestSink.apply's `rows`); undefined
   * when there is nothing to store (an index in memory).
   */
  set(key: string, path: string | null): RowWrite | undefined;
  /** Forgets every entry (a TRUNCATE, `complete` kept true; or the start of a read of the whole table, false). */
  clear(complete: boolean): void;
  /** The read of the whole table that started with `clear(false)` is applied: the index is complete. */
  completed(): void;
}

/** One write of a stored row index: `path` null forgets the row. */
export interface RowWrite {
  readonly source: string;
  readonly key: string;
  readonly path: string | null;
}

export interface Source {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): SourceHealth;
  /**
   * False when the durable state holds topics of this source from a first read that was cut short
   * (a crash during the first snapshot), so serving them would show a state that never existed:
   * subscribes then wait until the source's read is complete. Absent: true.
   */
  holdsCompleteState?(): boolean;
}

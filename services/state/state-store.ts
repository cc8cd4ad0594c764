/**
 * The durable state of one tidewire node (issue #12): every topic's value, version, tenant and
 * source, the epoch, where each source was read up to, and a fingerprint per mapped table, kept
 * on local disk so a restart resumes instead of re-reading every table.
 *
 * The contract a caller builds on:
 * - `commit` resolves only once its store transaction is durable (fsynced). A source position
 *   (Postgres commit LSN, Kafka offset) may be acknowledged upstream only after the commit that
 *   holds it resolved: after a crash the store holds that position and every change before it.
 * - One commit is one store transaction: after a crash it is there whole or not at all.
 * - Commits issued while a write is in flight are grouped into the next durable write, in the
 *   order they were issued (group commit); each one's promise resolves when its group is durable.
 * - A store that is corrupt, written for another source, or in a format this build does not read
 *   is refused at open with a `StateError` naming the dir and what to do, never read as empty.
 * - One process writes a dir: a second open while the first holds it is refused (`STATE_LOCKED`).
 *
 * The implementation is `LmdbStateStore` (lmdb-state-store.ts); the choice is measured in
 * docs/BENCHMARKS.md, "State store choice".
 */
import type { RowWrite } from '../../core/ingest.ts';
import type { TopicRecord } from '../../core/topic.ts';

/**
 * This build writes format 3 (the layout is described in lmdb-state-store.ts) and reads 1 to 3:
 * format 1 had no removal log and no per-topic seq (its topics count as changed after any
 * position, and its removal log starts at its seq); formats 1 and 2 had no row indexes (none is
 * complete: a source rebuilds its own at the first start). A store in an older format is marked 3
 * at open.
 */
export const STATE_FORMAT_VERSION = 3;

/**
 * Who each source is, by source name: e.g. `{ postgres: '7301234567890123456/app' }` (the
 * cluster's system_identifier and the database), `{ kafka: '<cluster id>' }`. A store written
 * with another identity for a source of the same name is refused; a source not yet recorded is
 * added.
 */
export type SourceIdentity = Readonly<Record<string, string>>;

/** One topic as stored. */
export type StoredTopic = TopicRecord;

/** A removal as the removal log keeps it (services/topics/removal-log.ts). */
export interface StoredRemoval {
  readonly seq: number;
  readonly path: string;
  readonly version: number;
  readonly tenant: string;
}

/** One change in a commit: a topic written whole, or removed. */
export type StateChange =
  | ({
      readonly type: 'upsert';
      /** The value as JSON text, when the caller has it (it must be the value's JSON.stringify): written as is. */
      readonly valueJson?: string;
    } & StoredTopic)
  /** `version`: the removal's version; the store keeps the highest as `versionFloor`. */
  | { readonly type: 'removal'; readonly path: string; readonly version?: number; /** Logged in the removal log (with the commit's seq) when given. */ readonly tenant?: string };

export interface StateCommit {
  /** Applied in order; a later change of the same path wins. */
  readonly changes: readonly StateChange[];
  /**
   * The source positions these changes bring the state to, by name (`postgres`, or
   * `kafka:<topic>/<partition>`), as opaque strings; merged into the stored ones.
   */
  readonly positions?: Readonly<Record<string, string>>;
  /** The hand-off `seq` of the last batch the commit covers; never lower than the last commit's. */
  readonly seq: number;
  /** Row index writes (RowIndex), applied after the changes: entries set or, with path null, removed. */
  readonly rows?: readonly RowWrite[];
  /**
   * True: the commit ends inside a source transaction applied in parts (ChangeBatch.continues);
   * false: not (any more); absent: as before. Stored, so a start after a crash inside one knows
   * that the state holds a part of a transaction (`openTransaction`).
   */
  readonly open?: boolean;
}

export interface StateStoreOptions {
  /** Required: the identity of every source this node reads (see `SourceIdentity`). */
  readonly identity: SourceIdentity;
  /** The epoch to record when the store is created (no state yet); ignored for an existing store. */
  readonly epoch?: string;
  /**
   * Changes written in one store transaction at most: a group commit closes when the next commit
   * would pass it (one commit larger than this is still written whole). Bounds the time the
   * writer holds one transaction. Default 100,000; 1 to 10,000,000.
   */
  readonly maxChangesPerWrite?: number;
  /** Removals the removal log keeps, oldest forgotten first (its floor rises). Default 100,000. */
  readonly removalLog?: number;
}

export interface StateStore {
  readonly dir: string;
  /** True when there was no state (new or empty dir): a first start, everything to be read. */
  readonly created: boolean;
  readonly formatVersion: number;
  /** The epoch recorded, or null when none was (a created store opened without `epoch`). */
  readonly epoch: string | null;
  /** Every source identity recorded (those passed at open, and any recorded earlier). */
  readonly identity: SourceIdentity;
  /** The `seq` of the last durable commit (0 before any). */
  readonly seq: number;
  /** True when the last durable commit ended inside a source transaction applied in parts (StateCommit.open). */
  readonly openTransaction: boolean;
  /**
   * The highest version a removed topic reached, as of the last durable commit (0: none): a path
   * created again after a restart starts above it, so a (path, version) pair names one state.
   */
  readonly versionFloor: number;
  /** Positions as of the last durable commit. */
  positions(): Readonly<Record<string, string>>;
  /** Mapping fingerprints by table, as of the last durable write. */
  fingerprints(): Readonly<Record<string, string>>;
  /**
   * The removal log as of the last durable commit: the seq below which it does not reach, and its
   * entries in seq order (read from the store).
   */
  removals(): { readonly floor: number; readonly entries: IterableIterator<StoredRemoval> };
  /** Topics stored (durable and committed). */
  readonly topicCount: number;
  /**
   * Every stored topic in path order (the UTF-8 byte order of paths), from `start` (inclusive)
   * and up to `end` (exclusive) when given, decoding only those whose path `accept` takes (all
   * without it). Throws `STATE_CORRUPT` on a record that does not decode.
   */
  topics(start?: string, end?: string, accept?: (path: string) => boolean): IterableIterator<StoredTopic>;
  /** One topic, read from the store (not from the JS heap). */
  get(path: string): StoredTopic | undefined;
  /** Resolves when the commit is durable; rejects with a `StateError`. */
  commit(commit: StateCommit): Promise<void>;
  /** The path stored for row `key` in the row index of `source` (as of the last commit written). */
  rowPath(source: string, key: string): string | undefined;
  /** True when the stored row index of `source` was marked complete (`completeRows`) and not reset since. */
  rowsComplete(source: string): boolean;
  /** Removes every entry of the row index of `source` and marks it complete or not, in order with commits. */
  resetRows(source: string, complete: boolean): Promise<void>;
  /** Marks the row index of `source` complete, in order with commits. */
  completeRows(source: string): Promise<void>;
  /** Records (or with null, forgets) a table's mapping fingerprint, in order with commits. */
  setFingerprint(table: string, fingerprint: string | null): Promise<void>;
  /** Records a new epoch, in order with commits. */
  setEpoch(epoch: string): Promise<void>;
  /** Records source identities (merged), in order with commits. */
  setIdentity(identity: SourceIdentity): Promise<void>;
  /** How many durable store transactions were written since open (group commit makes it fewer than the commits). */
  readonly writes: number;
  /** Waits for the writes issued, then closes; later calls reject with `STATE_CLOSED`. */
  close(): Promise<void>;
}

/**
 * The current state of every topic: value and version, keyed by path in a tree so wildcard
 * selectors walk only the branches they name. Each update is diffed against the cached value;
 * an update that changes nothing produces no change at all, and a change is serialized for the
 * wire once, here, never once per subscriber.
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject } from '../../core/json.ts';
import { type ChangeBatch, DEFAULT_TENANT, type Topic, type TopicChange, type TopicUpdate, type TopicView } from '../../core/topic.ts';
import { type PatchOp, diffValues } from '../../core/delta.ts';
import type { Selector } from '../../core/selector.ts';
import { type HistoryOptions, TopicHistory } from './topic-history.ts';
import { REMOVAL_LOG_DEFAULT_CAPACITY, type RemovalEntry, RemovalLog } from './removal-log.ts';
import { deltaText, prefersDelta, removalMessage, valueText } from '../../core/wire.ts';
import { HeapTopicIndex, type LoadedTopic, type TopicIndex } from './topic-index.ts';
import { type ReplicatedBatch, ReplicaError, planReplica } from './replicated-batch.ts';

export type { LoadedTopic } from './topic-index.ts';

export function newEpoch(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export interface TopicStoreOptions {
  epoch?: string;
  /** The per-topic change history resumes are served from (defaults in topic-history.ts). */
  history?: HistoryOptions;
  /** Removals remembered for resumes from a position (removal-log.ts). Default 100,000. */
  removalLog?: number;
}

/** Where a state read back from disk stands (see TopicStore.restore). */
export interface RestoredState {
  readonly epoch: string;
  /** The seq of the last batch the state covers. */
  readonly seq: number;
  /** The highest version a removed path reached (see HistoryStart). */
  readonly versionFloor: number;
  /**
   * The removal log kept with the state: its floor and entries (seq order). Absent (a state
   * stored before the log was kept): the log reaches back only to `seq`.
   */
  readonly removals?: { readonly floor: number; readonly entries: Iterable<RemovalEntry> };
}

/**
 * How far a restored state's batch numbers jump (TopicStore.restore): more than the batches that can
 * be applied and not yet durable (the state journal holds back ingest at 200,000 changes).
 */
export const RESTORE_SEQ_GAP = 10_000_000;

export class TopicStore implements TopicView {
  private _epoch: string;
  /** Recent changes per topic and the last versions of removed paths. */
  history: TopicHistory;
  private readonly historyOptions: HistoryOptions | undefined;
  /** The removals of recent batches, for resumes from a position. */
  removals: RemovalLog;
  private readonly removalCapacity: number;
  private topics: TopicIndex = new HeapTopicIndex();
  private seq = 0;
  /**
   * Who numbers this state's changes: this store (`apply`, an ingest or all-in-one node) or another
   * node's, whose batches it takes with their versions (`replicate`, an edge). Never both: a version
   * minted here could name another state than the same version minted there. Null: neither yet.
   */
  private numbering: 'own' | 'replica' | null = null;
  /** After a restore: positions after the restored seq and up to the first of this run were lost. */
  private lost: { readonly after: number; readonly through: number } | null = null;

  constructor(options: TopicStoreOptions = {}) {
    this._epoch = options.epoch ?? newEpoch();
    this.historyOptions = options.history;
    this.history = new TopicHistory(options.history);
    this.removalCapacity = options.removalLog ?? REMOVAL_LOG_DEFAULT_CAPACITY;
    this.removals = new RemovalLog(this.removalCapacity);
  }

  get epoch(): string {
    return this._epoch;
  }

  /**
   * Keeps topics in `index` from now on (e.g. the durable store's, stored-topic-index.ts): only
   * while the store holds nothing. The index may already hold topics: those of a state restored
   * with `restore` (pass no topics there).
   */
  useIndex(index: TopicIndex): void {
    if (this.seq !== 0 || this.topics.size > 0) throw new Error('TopicStore.useIndex: the store already holds state');
    this.topics = index;
  }

  /**
   * Takes over a state read back from durable storage: its epoch, seq and version floor, and its
   * topics as they were (no change is emitted: they are the state clients of this epoch already
   * hold). Only before anything was applied; a path given twice keeps the last. Without `topics`,
   * the index given to `useIndex` holds them already. Returns the count.
   */
  restore(state: RestoredState, topics?: Iterable<LoadedTopic>): number {
    if (this.seq !== 0 || (topics !== undefined && this.topics.size > 0)) throw new Error('TopicStore.restore: the store already holds state');
    this._epoch = state.epoch;
    // Batches applied after the durable ones were delivered, then lost with the process: clients
    // may hold positions up to RESTORE_SEQ_GAP past it (the journal bounds what is not durable far
    // below that). This run numbers after them, so those positions are never mistaken for its own.
    this.seq = state.seq + RESTORE_SEQ_GAP;
    this.lost = { after: state.seq, through: this.seq };
    this.history = new TopicHistory(this.historyOptions, { versionFloor: state.versionFloor });
    const removals = state.removals;
    this.removals = new RemovalLog(this.removalCapacity, removals ? removals.floor : state.seq);
    if (removals) for (const e of removals.entries) this.removals.add(e);
    if (topics === undefined) return this.topics.size;
    let n = 0;
    for (const t of topics) {
      const topic: Topic = { path: t.path, tenant: t.tenant, source: t.source, value: t.value, version: t.version };
      if (t.seq !== undefined) topic.seq = t.seq;
      this.topics.delete(t.path, 0);
      this.topics.add(topic);
      n++;
    }
    return n;
  }

  get size(): number {
    return this.topics.size;
  }

  get position(): number {
    return this.seq;
  }

  positionLost(seq: number): boolean {
    return this.lost !== null && seq > this.lost.after && seq <= this.lost.through;
  }

  changesSince(topic: Topic, version: number): ReadonlyArray<readonly PatchOp[]> | null {
    if (!this.isCurrent(topic)) return null;
    return this.history.since(topic.path, version, topic.version);
  }

  versionAt(topic: Topic, seq: number): number | null {
    if (!this.isCurrent(topic)) return null;
    if (topic.seq !== undefined && topic.seq <= seq) return topic.version;
    return this.history.versionAt(topic.path, seq);
  }

  removedVersion(path: string): number | undefined {
    return this.history.removedVersion(path);
  }

  removalsSince(seq: number): Iterable<RemovalEntry> | null {
    return this.removals.reaches(seq) ? this.removals.since(seq) : null;
  }

  get(path: string): Topic | undefined {
    return this.topics.get(path);
  }

  /**
   * Applies the updates of one source transaction; returns the resulting batch, or null when
   * nothing changed (e.g. an UPDATE that rewrote identical values).
   */
  apply(updates: readonly TopicUpdate[]): ChangeBatch | null {
    this.numberedBy('own');
    const changes: TopicChange[] = [];
    for (const u of updates) {
      const change = u.value === null ? this.remove(u.path) : this.upsert(u);
      if (change) changes.push(change);
    }
    return changes.length === 0 ? null : { epoch: this.epoch, seq: ++this.seq, changes };
  }

  /**
   * A batch with no change: the end of a source transaction applied in parts whose last part
   * changed nothing (ChangeBatch.continues), so that what follows knows it is complete.
   */
  emptyBatch(): ChangeBatch {
    this.numberedBy('own');
    return { epoch: this.epoch, seq: ++this.seq, changes: [] };
  }

  /** Removes every topic a source produced (a TRUNCATE, or a mapping being reset). */
  removeSource(source: string): ChangeBatch | null {
    this.numberedBy('own');
    const changes: TopicChange[] = [];
    const paths: string[] = [];
    for (const topic of this.topics.values()) if (topic.source === source) paths.push(topic.path);
    for (const path of paths) changes.push(this.remove(path)!);
    return changes.length === 0 ? null : { epoch: this.epoch, seq: ++this.seq, changes };
  }

  /**
   * Applies a batch another node's store minted (an edge taking the ingest node's batches from the
   * hand-off log) with its epoch, seq and versions, and returns it as this store's ChangeBatch: the
   * same changes with the same wire text the ingest node's distribution sent, since both are
   * written here by the same code. The history and the removal log are kept as there, so a client
   * resumes on this node as on any other. The first batch of a store that holds nothing sets its
   * epoch. Throws ReplicaError, having applied nothing of the batch, when it does not fit the state
   * held (a gap, another epoch, a seq not after the position).
   */
  replicate(batch: ReplicatedBatch): ChangeBatch {
    this.numberedBy('replica');
    if (this.seq === 0 && this.topics.size === 0) this._epoch = batch.epoch;
    else if (batch.epoch !== this._epoch) {
      throw new ReplicaError('REPLICA_EPOCH', `batch ${batch.seq} is of epoch ${batch.epoch}, this replica holds epoch ${this._epoch}: rebuild the replica from the log of the new epoch`);
    }
    if (batch.seq <= this.seq) throw new ReplicaError('REPLICA_ORDER', `batch ${batch.seq} does not come after batch ${this.seq}, the last this replica applied`);
    const applied = this.applyMinted(batch);
    this.seq = batch.seq;
    return applied;
  }

  /**
   * Applies a batch this node minted before it stopped, which the hand-off log holds and the
   * durable state had not stored yet (an ingest node at start, issue #15: see
   * services/handoff/log-recovery.ts), with the seq and versions it carries, so the state is again
   * the one the log's readers hold. Only after `restore` and before this run applies a batch of
   * its own; the batches numbered next still jump past anything delivered and lost (RESTORE_SEQ_GAP),
   * now counted from this batch. Throws ReplicaError, having applied nothing, when the batch does
   * not fit the state (another epoch, a seq not after the position, a version that does not follow).
   */
  recover(batch: ReplicatedBatch): ChangeBatch {
    const lost = this.lost;
    if (lost === null || this.seq !== lost.through || this.numbering === 'replica') throw new Error('TopicStore.recover: only after restore, before this run applies anything');
    if (batch.epoch !== this._epoch) {
      throw new ReplicaError('REPLICA_EPOCH', `batch ${batch.seq} of the hand-off log is of epoch ${batch.epoch}, the stored state of epoch ${this._epoch}: the log was written by another ingest node's state`);
    }
    if (batch.seq <= lost.after) throw new ReplicaError('REPLICA_ORDER', `batch ${batch.seq} of the hand-off log does not come after batch ${lost.after}, the last the stored state holds`);
    const applied = this.applyMinted(batch);
    this.seq = batch.seq + RESTORE_SEQ_GAP;
    this.lost = { after: batch.seq, through: this.seq };
    return applied;
  }

  /** Applies a batch with the versions it carries, as planned against this state (replicated-batch.ts). */
  private applyMinted(batch: ReplicatedBatch): ChangeBatch {
    const seq = batch.seq;
    const changes: TopicChange[] = [];
    for (const step of planReplica(batch, this)) {
      const c = step.change;
      if (step.kind === 'create') {
        this.history.firstVersion(c.path); // forgets the tombstone, as the ingest node's store did
        changes.push(this.created(c.path, c.tenant, c.source, step.value, c.version, seq));
      } else if (step.kind === 'update') changes.push(this.updated(this.topics.get(c.path)!, step.value, step.patch, seq));
      else changes.push(this.removed(this.topics.get(c.path)!, seq));
    }
    return batch.continues === true ? { epoch: this._epoch, seq, changes, continues: true } : { epoch: this._epoch, seq, changes };
  }

  forEachMatching(selector: Selector, visit: (topic: Topic) => void): void {
    this.topics.forEachMatching(selector, visit);
  }

  /** The topics the selector matches, as an iterator (one can be read across turns of the event loop). */
  matching(selector: Selector): IterableIterator<Topic> {
    return this.topics.matching(selector);
  }

  /** Every topic, in no particular order. */
  all(): IterableIterator<Topic> {
    return this.topics.values();
  }

  private numberedBy(kind: 'own' | 'replica'): void {
    if (this.numbering === kind) return;
    if (this.numbering !== null) {
      throw new ReplicaError('REPLICA_MIXED', kind === 'own' ? 'this store replicates another node\'s batches: it cannot number changes of its own' : 'this store numbers its own changes: it cannot replicate another node\'s batches');
    }
    this.numbering = kind;
  }

  /** Is `topic` the one the state holds now (the same version of the same path)? */
  private isCurrent(topic: Topic): boolean {
    const now = this.topics.get(topic.path);
    return now === topic || (now !== undefined && now.version === topic.version);
  }

  private upsert(u: TopicUpdate): TopicChange | null {
    const existing = this.topics.get(u.path);
    let value = u.value!;
    const seq = this.seq + 1;
    // Usually 1; a path created again continues after its removal (see topic-history.ts).
    if (!existing) return this.created(u.path, u.tenant ?? DEFAULT_TENANT, u.source, value, this.history.firstVersion(u.path), seq);
    if (u.keep && u.keep.length > 0) {
      value = { ...value };
      for (const k of u.keep) if (Object.hasOwn(existing.value, k)) value[k] = existing.value[k];
    }
    const patch = diffValues(existing.value, value);
    if (patch.length === 0) return null;
    return this.updated(existing, value, patch, seq);
  }

  private remove(path: string): TopicChange | null {
    const topic = this.topics.get(path);
    return topic ? this.removed(topic, this.seq + 1) : null;
  }

  /** A topic new at its path, at `version`, in batch `seq`. */
  private created(path: string, tenant: string, source: string, value: JsonObject, version: number, seq: number): TopicChange {
    const topic: Topic = { path, tenant, source, value, version, seq };
    this.topics.add(topic);
    const valueJson = JSON.stringify(value);
    return { type: 'value', topic, version, wire: valueText(path, version, valueJson), before: null, after: value, afterJson: valueJson };
  }

  /** `existing` takes `value` (`patch` turns its value into it) at the next version, in batch `seq`; the one delta-or-value rule picks the message. */
  private updated(existing: Topic, value: JsonObject, patch: PatchOp[], seq: number): TopicChange {
    const before = existing.value;
    existing.value = value;
    const version = ++existing.version;
    const prevSeq = existing.seq ?? 0;
    existing.seq = seq;
    const patchJson = JSON.stringify(patch);
    const valueJson = JSON.stringify(value);
    this.topics.changed(existing);
    this.history.record(existing.path, version, patch, patchJson.length, seq, prevSeq);
    if (prefersDelta(patchJson, valueJson)) {
      const wire = deltaText(existing.path, version, patchJson);
      return { type: 'delta', topic: existing, version, patch, wire, before, after: value, valueBytes: Buffer.byteLength(valueJson), afterJson: valueJson };
    }
    return { type: 'value', topic: existing, version, wire: valueText(existing.path, version, valueJson), before, after: value, afterJson: valueJson };
  }

  /** `topic` removed in batch `seq`, at the version after its last. */
  private removed(topic: Topic, seq: number): TopicChange {
    const { path } = topic;
    this.topics.delete(path, seq);
    const version = topic.version + 1;
    this.history.removed(path, version);
    this.removals.add({ seq, path, version, tenant: topic.tenant });
    return { type: 'removal', topic, version, wire: removalMessage(path, version), before: topic.value, after: null };
  }
}

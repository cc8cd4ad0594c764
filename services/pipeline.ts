/**
 * Applies connector updates to topic state, hands the resulting batches to distribution and, with
 * durable state, writes them to the state journal; answers the sources' checkpoints and re-reads.
 */
import type { IngestSink, Resync, RowIndex, RowWrite, SourceCheckpoints, SourcePosition, TransactionPart } from '../core/ingest.ts';
import { diffValues } from '../core/delta.ts';
import { parseSelector } from '../core/selector.ts';
import type { JsonObject } from '../core/json.ts';
import { DEFAULT_TENANT, type ChangeBatch, type TopicChange, type TopicUpdate } from '../core/topic.ts';
import type { Handoff } from './handoff/handoff.ts';
import type { StateJournal } from './state/state-journal.ts';
import type { TopicStore } from './topics/topic-store.ts';

export interface PipelineOptions {
  /**
   * Count the wire bytes of every change by type, and what each delta would have cost as a full
   * value (the `tidewire_wire_bytes_total` metrics). Costs a UTF-8 byte count of each change's
   * wire text, once per change (not per client); the store reports what the value would have
   * cost. Default false.
   */
  measureWireBytes?: boolean;
  /** Durable state: every applied batch is written to it. Absent: state lives in memory only. */
  journal?: StateJournal;
  /**
   * Behind a hand-off that keeps a log: changes handed to it and not yet acknowledged by the log
   * past which a source waits for the log. Default 20,000.
   */
  maxUnloggedChanges?: number;
}

/** Wire bytes (UTF-8) of the changes emitted, once per change, before fan-out. */
export interface WireBytes {
  value: number;
  delta: number;
  removal: number;
  /** What the deltas would have cost sent as `value` messages: `delta` / this is the saving. */
  deltaAsValue: number;
}

const done = (): void => {};
const RESOLVED = Promise.resolve();

export class Pipeline implements IngestSink, SourceCheckpoints {
  /** Row changes applied and changes emitted, for metrics and benchmarks. */
  updatesApplied = 0;
  changesEmitted = 0;
  /** Changes emitted by type; counted only with `measureWireBytes`. */
  readonly changesByType: Record<TopicChange['type'], number> = { value: 0, delta: 0, removal: 0 };
  /** Counted only with `measureWireBytes`. */
  readonly wireBytes: WireBytes = { value: 0, delta: 0, removal: 0, deltaAsValue: 0 };
  private readonly measure: boolean;
  private journal: StateJournal | null;
  private readonly maxUnlogged: number;
  /** Changes (and batches) handed to the hand-off's log and not acknowledged yet. */
  private unlogged = 0;
  /** Why the hand-off's log refused a batch; every later apply fails with it. */
  private logFailure: unknown = null;
  /** Settles once the last batch handed to the hand-off's log is in it (null: none yet). */
  private lastLogged: Promise<void> | null = null;
  /**
   * Source transactions being applied in parts (IngestSink.apply's `part`), by source: every batch
   * published meanwhile, of any source, is marked `continues`, so distribution sends them all
   * with the last part.
   */
  private readonly openTransactions = new Set<string>();
  /** Called once when the open transaction ends (resumeOpenTransaction). */
  private onEnd: (() => void) | null = null;

  constructor(
    readonly store: TopicStore,
    readonly handoff: Handoff,
    options: PipelineOptions = {},
  ) {
    this.measure = options.measureWireBytes ?? false;
    this.journal = options.journal ?? null;
    this.maxUnlogged = options.maxUnloggedChanges ?? 20_000;
  }

  /**
   * Makes state durable from now on (null: in memory). The service does it at start, when topic
   * state equals what the journal's store holds (just loaded from it, or flushed to it at a stop).
   */
  useJournal(journal: StateJournal | null): void {
    this.journal = journal;
  }

  /** True when state is durable: positions are stored and checkpoints wait for the disk. */
  get durable(): boolean {
    return this.journal !== null;
  }

  apply(updates: readonly TopicUpdate[], position?: SourcePosition, rows?: readonly RowWrite[], part?: TransactionPart): Promise<void> {
    this.updatesApplied += updates.length;
    const open = this.openTransactions;
    let closed = false;
    if (part !== undefined) {
      if (!part.last) open.add(part.transaction);
      else closed = open.delete(part.transaction);
    } else if (position !== undefined && open.has(position.name)) {
      // A whole transaction of a source whose transaction was open (one restored after a crash,
      // then read again another way): that one is over.
      closed = open.delete(position.name);
    }
    const closes = closed && open.size === 0;
    const batch = this.store.apply(updates);
    const done = this.publish(batch === null && closes ? this.store.emptyBatch() : batch, position, rows);
    if (closes && this.onEnd !== null) {
      const end = this.onEnd;
      this.onEnd = null;
      end();
    }
    return done;
  }

  /**
   * The state restored holds a part of a source transaction applied in parts: a crash came inside
   * it (StateStore.openTransaction). Until the source applies it again to its end, every batch is
   * marked `continues`, as if it had never stopped; `onEnd` is called once it is whole.
   */
  resumeOpenTransaction(transaction: string, onEnd: () => void): void {
    this.openTransactions.add(transaction);
    this.onEnd = onEnd;
  }

  rowIndex(source: string): RowIndex | null {
    return this.journal?.rowIndex(source) ?? null;
  }

  /** @internal a re-read's row index writes: stored at once (the index counts as complete only after the re-read). */
  writeRows(rows: readonly RowWrite[]): Promise<void> | void {
    return this.journal?.write(null, undefined, rows) ?? undefined;
  }

  removeSource(source: string, position?: SourcePosition): Promise<void> {
    return this.publish(this.store.removeSource(source), position);
  }

  claim(name: string, identity: string): Promise<void> {
    return this.journal ? this.journal.claim(name, identity) : Promise.resolve();
  }

  holdsTopics(): boolean {
    return this.store.size > 0;
  }

  *topicsOf(source: string, where?: string): Iterable<{ readonly path: string; readonly value: JsonObject }> {
    for (const t of where === undefined ? this.store.all() : this.store.matching(parseSelector(where))) if (t.source === source) yield t;
  }

  stored(name: string): string | null {
    return this.journal?.store.positions()[name] ?? null;
  }

  fingerprints(): Readonly<Record<string, string>> {
    return this.journal?.store.fingerprints() ?? {};
  }

  setFingerprints(fingerprints: Readonly<Record<string, string | null>>): Promise<void> {
    return this.journal ? this.journal.setFingerprints(fingerprints) : Promise.resolve();
  }

  checkpoint(position: SourcePosition): Promise<void> {
    if (this.logFailure !== null) return Promise.reject(this.logFailure);
    return this.journal ? this.journal.checkpoint(position) : Promise.resolve();
  }

  /**
   * Resolves once everything applied so far is durable, and in the hand-off's log when it keeps one
   * (at once in memory, in process). With durable state the journal's flush covers the log: it
   * commits a batch only once the log holds it.
   */
  flushed(): Promise<void> {
    if (this.logFailure !== null) return Promise.reject(this.logFailure);
    if (this.journal !== null) return this.journal.flushed();
    return this.lastLogged ?? RESOLVED;
  }

  resync(sources: readonly string[]): Resync {
    return new PipelineResync(this, sources);
  }

  /** @internal the resync's end: one batch of what differed, and the removals. */
  applyResync(updates: readonly TopicUpdate[], position?: SourcePosition): Promise<void> {
    return this.publish(this.store.apply(updates), position);
  }

  private publish(changed: ChangeBatch | null, position?: SourcePosition, rows?: readonly RowWrite[]): Promise<void> {
    const batch = changed !== null && this.openTransactions.size > 0 ? { ...changed, continues: true } : changed;
    if (!batch) return this.journal?.write(null, position, rows) ?? Promise.resolve();
    this.changesEmitted += batch.changes.length;
    if (this.measure) this.count(batch.changes);
    if (this.handoff.keepsLog) return this.publishToLog(batch, position, rows);
    const wait = this.journal?.write(batch, position, rows) ?? null;
    const handed = this.handoff.publish(batch);
    return wait ? Promise.all([handed, wait]).then(done) : handed.then(done);
  }

  /**
   * Behind a hand-off that keeps a log (an ingest node): the log first, and the durable state
   * stores the batch once the log holds it (state-journal.ts). The source does not wait for the
   * log's acknowledgement of each transaction (one round trip each would bound ingest to a few
   * hundred transactions per second): only once `maxUnloggedChanges` are not in the log yet, or
   * the journal holds it back. A batch the log refused fails every later apply.
   */
  private publishToLog(batch: ChangeBatch, position?: SourcePosition, rows?: readonly RowWrite[]): Promise<void> {
    if (this.logFailure !== null) return Promise.reject(this.logFailure);
    const logged = this.handoff.publish(batch, { position, rows });
    const n = batch.changes.length + 1;
    this.unlogged += n;
    const inLog = logged.then(
      () => {
        this.unlogged -= n;
      },
      (err: unknown) => {
        this.unlogged -= n;
        this.logFailure ??= err;
        throw err;
      },
    );
    // The failure reaches the source from its next apply or checkpoint, not as an unhandled rejection.
    inLog.catch(() => {});
    this.lastLogged = inLog;
    const wait = this.journal?.write(batch, position, rows, logged) ?? null;
    const behind = this.unlogged > this.maxUnlogged ? inLog : null;
    if (wait !== null && behind !== null) return Promise.all([wait, behind]).then(done);
    return wait ?? behind ?? RESOLVED;
  }

  private count(changes: readonly TopicChange[]): void {
    const bytes = this.wireBytes;
    for (const c of changes) {
      const n = Buffer.byteLength(c.wire);
      this.changesByType[c.type]++;
      bytes[c.type] += n;
      if (c.type === 'delta') {
        // A delta wire is `{"type":"delta",<path, version>,"patch":<patch>}`; the value message it
        // stands for differs only in its last member, the value after the change.
        const patchAt = c.wire.indexOf(',"patch":') + 9;
        const patchBytes = n - Buffer.byteLength(c.wire.slice(0, patchAt)) - 1;
        bytes.deltaAsValue += n - patchBytes + c.valueBytes;
      }
    }
  }
}

/**
 * One re-read of some sources: rows equal to the state are only marked seen; rows that differ are
 * held until `finish`, which applies them with the removal of every topic of these sources not
 * read, as one batch. Only the differing rows are kept, so a re-read after a short outage holds
 * almost nothing; the marks are one set of paths.
 */
class PipelineResync implements Resync {
  read = 0;
  differing = 0;
  private readonly sources: ReadonlySet<string>;
  private seen = new Set<string>();
  private held = new Map<string, TopicUpdate>();
  private done = false;

  constructor(
    private readonly pipeline: Pipeline,
    sources: readonly string[],
  ) {
    this.sources = new Set(sources);
  }

  take(updates: readonly TopicUpdate[], rows?: readonly RowWrite[]): Promise<void> | void {
    if (this.done) throw new Error('this re-read has finished');
    const store = this.pipeline.store;
    for (const u of updates) {
      this.read++;
      if (u.value === null) continue; // a snapshot reads rows; it never removes one
      this.seen.add(u.path);
      const t = store.get(u.path);
      const same = t !== undefined && t.source === u.source && t.tenant === (u.tenant ?? DEFAULT_TENANT) && diffValues(t.value, u.value).length === 0;
      if (same) {
        this.held.delete(u.path);
        continue;
      }
      if (!this.held.has(u.path)) this.differing++;
      this.held.set(u.path, u);
    }
    if (rows !== undefined && rows.length > 0) return this.pipeline.writeRows(rows);
  }

  async finish(position?: SourcePosition): Promise<{ changed: number; removed: number }> {
    if (this.done) throw new Error('this re-read has finished');
    this.done = true;
    const updates: TopicUpdate[] = [...this.held.values()];
    let removed = 0;
    for (const t of this.pipeline.store.all()) {
      if (this.sources.has(t.source) && !this.seen.has(t.path)) {
        updates.push({ path: t.path, source: t.source, value: null });
        removed++;
      }
    }
    const changed = updates.length - removed;
    this.seen = new Set();
    this.held = new Map();
    await this.pipeline.applyResync(updates, position);
    return { changed, removed };
  }

  abort(): void {
    this.done = true;
    this.seen = new Set();
    this.held = new Map();
  }
}

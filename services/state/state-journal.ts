/**
 * Writes what topic state applies into the durable store, in order, and says when a source
 * position may be acknowledged: the seam between the in-memory state (services/topics) and its
 * durable copy (state-store.ts).
 *
 * Writes are not awaited by ingest (clients get a change as soon as it is applied; the store's
 * group commit turns many batches into one fsync), with two exceptions that bound what is at risk:
 * - back-pressure: once `maxPendingChanges` are written but not yet durable, `write` hands back a
 *   promise, and ingest waits for the store before it reads more;
 * - acknowledgement: `checkpoint` resolves only once everything written before it, and the
 *   position, are durable. A position goes into the same store transaction as the changes it
 *   covers, so after a crash the stored state is exactly the one at the stored position.
 *
 * A failed write fails every later one (StateError STATE_WRITE_FAILED): ingest stops, nothing
 * more is acknowledged, and a restart resumes from the last durable position.
 *
 * Behind a hand-off that keeps a log (an ingest node, issue #15), a batch is committed only once
 * the log holds it (`write`'s `logged`), with the log's position after it, and every later store
 * write waits for that commit: the stored state is never ahead of the log, so a restart only
 * has to store what the log holds past that position (log-recovery.ts), never publish again.
 */
import type { RowWrite, SourcePosition } from '../../core/ingest.ts';
import type { ChangeBatch } from '../../core/topic.ts';
import { StateError, rebuildAdvice } from './state-error.ts';
import type { StateChange, StateStore } from './state-store.ts';
import { StoredRowIndex } from './stored-row-index.ts';

function foreignSource(dir: string, name: string, recorded: string, now: string): StateError {
  return new StateError(
    'STATE_FOREIGN_SOURCE',
    dir,
    `tidewire state in ${dir} was written for source ${name} = ${recorded}, but ${name} is now ${now} (another cluster or database): its positions and topics do not belong to it. ${rebuildAdvice(dir).replace(/^./, (c) => c.toUpperCase())}`,
  );
}

export interface JournalOptions {
  /** Changes written and not yet durable past which ingest waits for the store. Default 200,000. */
  readonly maxPendingChanges?: number;
  /** Called once the store holds every batch up to `seq` durably, in seq order (topic state may then drop its heap copies). */
  readonly onDurable?: (seq: number) => void;
}

export const JOURNAL_DEFAULTS = { maxPendingChanges: 200_000 } as const;

export class StateJournal {
  /** Changes handed to the store whose write is not durable yet. */
  pendingChanges = 0;
  private readonly maxPending: number;
  private last: Promise<void> = Promise.resolve();
  private seq: number;
  private failure: unknown = null;
  /** Positions handed to the store, durable or not: a checkpoint at one of them needs no write of its own. */
  private readonly written = new Map<string, string>();
  private readonly onDurable: ((seq: number) => void) | undefined;
  private readonly rowIndexes = new Map<string, StoredRowIndex>();
  /**
   * Settles once the last commit waiting for the log is issued to the store (not durable: the
   * store's group commit still takes many batches at once); null when none waits.
   */
  private gate: Promise<unknown> | null = null;

  constructor(
    readonly store: StateStore,
    options: JournalOptions = {},
  ) {
    this.maxPending = options.maxPendingChanges ?? JOURNAL_DEFAULTS.maxPendingChanges;
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) throw new RangeError('state journal maxPendingChanges must be an integer ≥ 1');
    this.onDurable = options.onDurable;
    this.seq = store.seq;
    for (const [name, p] of Object.entries(store.positions())) this.written.set(name, p);
  }

  /** The stored row index of `source` (one per source, kept across connector restarts). */
  rowIndex(source: string): StoredRowIndex {
    let index = this.rowIndexes.get(source);
    if (index === undefined) {
      index = new StoredRowIndex(source, this.store, (write) => {
        if (this.failure) return Promise.reject(this.failure);
        const done = this.issue(write);
        this.last = done;
        return done;
      });
      this.rowIndexes.set(source, index);
    }
    return index;
  }

  /**
   * Writes one applied batch (and the position it brings its source to, and the row index writes
   * of the changes it came from). Returns null when ingest may go on at once, or a promise to wait
   * for when too much is pending (back-pressure). With `logged`, the batch is committed once it
   * resolves, with the position it gives (the hand-off log's after the batch) stored too; a
   * rejection fails the journal.
   */
  write(batch: ChangeBatch | null, position?: SourcePosition, rows?: readonly RowWrite[], logged?: Promise<SourcePosition | null>): Promise<void> | null {
    this.throwIfFailed();
    const hasRows = rows !== undefined && rows.length > 0;
    if (batch === null && position === undefined && !hasRows) return null;
    const changes: StateChange[] = batch === null ? [] : new Array(batch.changes.length);
    if (batch !== null) {
      this.seq = batch.seq;
      for (let i = 0; i < batch.changes.length; i++) {
        const c = batch.changes[i];
        changes[i] =
          c.type === 'removal'
            ? { type: 'removal', path: c.topic.path, version: c.version, tenant: c.topic.tenant }
            : { type: 'upsert', path: c.topic.path, tenant: c.topic.tenant, source: c.topic.source, version: c.version, value: c.after, valueJson: c.afterJson, seq: batch.seq };
      }
    }
    if (position !== undefined) this.written.set(position.name, position.position);
    const count = changes.length + (hasRows ? rows.length : 0);
    const seq = this.seq;
    this.pendingChanges += count;
    // `open` says whether the state now ends inside a transaction applied in parts (stored for a restart).
    const open = batch === null ? undefined : batch.continues === true;
    const positions = position ? { [position.name]: position.position } : undefined;
    const commit = (log: SourcePosition | null | undefined) =>
      this.store.commit({ changes, seq, positions: log ? { ...positions, [log.name]: log.position } : positions, rows: hasRows ? rows : undefined, open });
    const done = (logged === undefined ? this.issue(() => commit(undefined)) : this.afterLog(logged, commit)).then(
      () => {
        this.pendingChanges -= count;
        if (hasRows) this.rowsDurable(rows);
        this.onDurable?.(seq);
      },
      (err: unknown) => {
        this.pendingChanges -= count;
        this.failure ??= err;
        throw err;
      },
    );
    // The failure is reported to ingest by the next write or checkpoint, not as an unhandled rejection here.
    done.catch(() => {});
    this.last = done;
    return this.pendingChanges > this.maxPending ? done : null;
  }

  /** Resolves once everything written so far and `position` are durable. */
  checkpoint(position: SourcePosition): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.written.get(position.name) !== position.position) this.write(null, position);
    return this.flushed();
  }

  /** Records the identity of source `name`, or rejects (STATE_FOREIGN_SOURCE) when another one is recorded. */
  claim(name: string, identity: string): Promise<void> {
    const recorded = this.store.identity[name];
    if (recorded === identity) return Promise.resolve();
    if (recorded !== undefined) return Promise.reject(foreignSource(this.store.dir, name, recorded, identity));
    const write = this.issue(() => this.store.setIdentity({ [name]: identity }));
    this.last = write;
    return write;
  }

  /** Records mapping fingerprints, in order with what was written. */
  setFingerprints(fingerprints: Readonly<Record<string, string | null>>): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const all = this.issue(() => Promise.all(Object.entries(fingerprints).map(([table, fp]) => this.store.setFingerprint(table, fp))).then(() => {}));
    this.last = all;
    return all;
  }

  /** Resolves once everything written so far is durable; rejects with the store's failure. */
  flushed(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return this.last;
  }

  /**
   * Issues a store write now, or, while commits wait for the log, right after the last of them is
   * issued (reactions to one promise run in the order they were added: the store sees the writes
   * in the order they were made).
   */
  private issue<T>(write: () => Promise<T>): Promise<T> {
    return this.gate === null ? write() : this.gate.then(write);
  }

  /** Commits once the log holds the batch, and after every write made before. */
  private afterLog(logged: Promise<SourcePosition | null>, commit: (log: SourcePosition | null) => Promise<void>): Promise<void> {
    const before = this.gate;
    const ready = before === null ? logged : before.then(() => logged);
    const done = ready.then(commit);
    this.gate = ready;
    ready.then(
      () => {
        // Nothing waits for the log any more: later writes go to the store at once again.
        if (this.gate === ready) this.gate = null;
      },
      // The log failed the batch: `done` fails the journal (see write); the gate stays, and rejects what is chained on it.
      () => {},
    );
    return done;
  }

  private rowsDurable(rows: readonly RowWrite[]): void {
    let index: StoredRowIndex | undefined;
    for (const w of rows) {
      if (index === undefined || index.source !== w.source) index = this.rowIndexes.get(w.source);
      index?.durable(w);
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

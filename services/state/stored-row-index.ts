/**
 * A source's row index kept with the durable state (core/ingest.ts, RowIndex): entries are read
 * from the store (one LMDB read, not a heap map of every row), and written in the same store
 * transaction as the topics of the change that made them (IngestSink.apply's `rows`), so after a
 * crash the stored index is the one at the stored position: never ahead of the stored topics (an
 * entry pointing at a path the topic has not moved to yet would leave the old topic behind when
 * the change is applied again), never behind.
 *
 * Between a write and its commit being durable, the entry is answered from a small overlay on
 * the heap (bounded by the journal's back-pressure); once durable, from the store.
 */
import type { RowIndex, RowWrite } from '../../core/ingest.ts';
import type { StateStore } from './state-store.ts';

export class StoredRowIndex implements RowIndex {
  private _complete: boolean;
  /** Entries written and not yet durable: the write itself, so a later write of the same key is told apart. */
  private readonly overlay = new Map<string, RowWrite>();
  /** A reset not yet durable: the store still holds the entries it removes. */
  private resetting: object | null = null;

  constructor(
    readonly source: string,
    private readonly store: StateStore,
    /** Issues a store write in order with the journal's commits; resolves once durable. */
    private readonly issue: (write: () => Promise<void>) => Promise<void>,
  ) {
    this._complete = store.rowsComplete(source);
  }

  get complete(): boolean {
    return this._complete;
  }

  /** Entries on the heap, not yet durable. */
  get pending(): number {
    return this.overlay.size;
  }

  get(key: string): string | undefined {
    const w = this.overlay.get(key);
    if (w !== undefined) return w.path ?? undefined;
    if (this.resetting !== null) return undefined;
    return this.store.rowPath(this.source, key);
  }

  set(key: string, path: string | null): RowWrite {
    const w: RowWrite = { source: this.source, key, path };
    this.overlay.set(key, w);
    return w;
  }

  clear(complete: boolean): void {
    this.overlay.clear();
    this._complete = complete;
    const token = {};
    this.resetting = token;
    void this.issue(() => this.store.resetRows(this.source, complete))
      .then(() => {
        if (this.resetting === token) this.resetting = null;
      })
      // A failed write fails the journal: ingest learns of it from its next write.
      .catch(() => {});
  }

  completed(): void {
    this._complete = true;
    void this.issue(() => this.store.completeRows(this.source)).catch(() => {});
  }

  /** `w` is durable: the store answers for it from now on, unless a later write replaced it. */
  durable(w: RowWrite): void {
    // While a reset is in flight the store may not yet answer for it: keep the entry (a few).
    if (this.resetting === null && this.overlay.get(w.key) === w) this.overlay.delete(w.key);
  }
}

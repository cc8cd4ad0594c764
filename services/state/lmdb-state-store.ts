/**
 * The state store on LMDB (the npm package `lmdb`): one memory-mapped file, `data.mdb`, in the
 * state dir; every write a single LMDB transaction run on lmdb's writer thread, so the event loop
 * never waits for the disk. Chosen by measurement over SQLite: docs/BENCHMARKS.md, "State store
 * choice".
 *
 * Format 3, five named databases in one environment (a transaction spans all of them), and one
 * per stored row index:
 * - `meta`: `format` → `{"store":"tidewire-state","format":1}`, `identity` → JSON object of
 *   source → identity, `epoch` → the epoch, `seq` → the last commit's seq (decimal text),
 *   `floor` → the highest version of a removed topic (decimal text; absent: 0);
 * - `topics`: path → `[version, tenant, source, value]` as JSON text (state-records.ts);
 * - `positions`: name → opaque position text; `fingerprints`: table → fingerprint text;
 * - `removals` (format 2): the removal log, `<seq, 16 digits>\n<path>` → `[version, tenant]`,
 *   at most `removalLog` entries (oldest deleted in the commit that passes it), and `meta`
 *   `removalFloor` → the seq below which it does not reach (decimal text; absent: 0). Format 1
 *   stores are marked 3 at open, their `removalFloor` set to their seq;
 * - `rows/<source>` (format 3): the row index of one source (core/ingest.ts, RowIndex), row key →
 *   path, written in the same transaction as the topics it points to; `meta` `rowsComplete` → JSON
 *   array of the sources whose index is complete. Format 1 and 2 stores have none (none complete).
 * Beside it: lmdb's `lock.mdb`, and `owner.pid`, the process that has the dir open (dir-owner.ts).
 *
 * Durability: `overlappingSync: false`, so LMDB's own commit fsyncs the data before the meta page
 * that makes it visible, and the commit promise resolves after both; the meta page switch makes a
 * transaction all or nothing after a crash (lmdb's default on Linux, overlappingSync, resolves
 * commits before their fsync — not what a caller acknowledging an LSN needs).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Database, type RootDatabase, open } from 'lmdb';
import type { RowWrite } from '../../core/ingest.ts';
import { OWNER_FILE, claimDir } from './dir-owner.ts';
import { checkLmdbHeader } from './lmdb-header.ts';
import { StateError, rebuildAdvice } from './state-error.ts';
import { LazyStoredTopic, decodeFormat, decodeRemoval, decodeStringList, decodeStringMap, encodeFormat, encodeRemoval, encodedBound, removalKey, writeTopic } from './state-records.ts';
import {
  STATE_FORMAT_VERSION, type SourceIdentity, type StateCommit, type StateStore, type StateStoreOptions, type StoredRemoval, type StoredTopic,
} from './state-store.ts';

const DB_NAMES = ['meta', 'topics', 'positions', 'fingerprints', 'removals'] as const;
/** Row indexes are named databases `rows/<source>`. */
const ROWS_PREFIX = 'rows/';
/** Named databases one environment may hold: the five above and a row index per source, with room to spare. */
const MAX_DBS = 1024;
const DATA_FILE = 'data.mdb';
const LOCK_FILE = 'lock.mdb';
/** lmdb-js refuses keys over 1,978 bytes; its string keys take a byte or two of their own. */
export const MAX_PATH_BYTES = 1900;
/** Marks a row key stored as its hash (see storedRowKey); no row key of a source starts with it. */
const HASHED_ROW_KEY = '\u0001';
export const STATE_DEFAULTS = { maxChangesPerWrite: 100_000, removalLog: 100_000 } as const;

/** One write waiting for the writer: its records, and what becomes true once it is durable. */
interface PendingWrite {
  readonly changes: number;
  readonly apply: () => void;
  readonly durable: () => void;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class LmdbStateStore implements StateStore {
  readonly formatVersion = STATE_FORMAT_VERSION;
  private durableWrites = 0;
  private _epoch: string | null;
  private _seq: number;
  private _floor: number;
  private acceptedFloor: number;
  private _identity: Record<string, string>;
  private readonly _positions: Record<string, string>;
  private readonly _fingerprints: Record<string, string>;
  /** The seq of the last commit accepted (durable or not), to refuse one going backwards. */
  private acceptedSeq: number;
  /** StateCommit.open as of the last durable commit, and as of the last one accepted. */
  private _open = false;
  private acceptedOpen = false;
  private readonly queue: PendingWrite[] = [];
  private writing = false;
  private closing: Promise<void> | null = null;
  private failure: StateError | null = null;
  private readonly maxChangesPerWrite: number;
  /** Removal log: entries committed (durable or not), its capacity, its floor as accepted and as durable. */
  private removalCount = 0;
  private removalCapacity: number = STATE_DEFAULTS.removalLog;
  private _removalFloor = 0;
  /** Gives the dir up (dir-owner.ts). */
  private release: () => void = () => {};
  /** Where `record` writes a topic's bytes for the put. */
  private scratch = Buffer.allocUnsafeSlow(64 * 1024);
  /** Row index databases opened, by source. */
  private readonly rowDbs = new Map<string, Database<string, string>>();
  /** Sources whose row index is complete, as of the last durable write. */
  private readonly _rowsComplete = new Set<string>();
  /** The same as of the last write issued (durable or not): what the next mark is written over. */
  private readonly acceptedRowsComplete = new Set<string>();

  private constructor(
    readonly dir: string,
    readonly created: boolean,
    private readonly env: RootDatabase,
    private readonly dbs: Record<(typeof DB_NAMES)[number], Database<string, string>>,
    state: { epoch: string | null; seq: number; floor: number; identity: Record<string, string>; positions: Record<string, string>; fingerprints: Record<string, string> },
    maxChangesPerWrite: number,
  ) {
    this._epoch = state.epoch;
    this._seq = this.acceptedSeq = state.seq;
    this._floor = this.acceptedFloor = state.floor;
    this._identity = state.identity;
    this._positions = state.positions;
    this._fingerprints = state.fingerprints;
    this.maxChangesPerWrite = maxChangesPerWrite;
  }

  /**
   * Opens the store in `dir`, creating it when the dir is missing or empty. Refuses (with a
   * `StateError`) a store that is corrupt, from another source identity, or in another format.
   *
   * @example
   * const store = await LmdbStateStore.open('.tidewire/state', { identity: { postgres: `${sysid}/${db}` } });
   * if (store.created) await snapshotEverything(); else resumeFrom(store.positions().postgres);
   */
  static async open(dir: string, options: StateStoreOptions): Promise<LmdbStateStore> {
    const path = resolve(dir);
    const identity = validIdentity(path, options.identity);
    const maxChangesPerWrite = options.maxChangesPerWrite ?? STATE_DEFAULTS.maxChangesPerWrite;
    if (!Number.isInteger(maxChangesPerWrite) || maxChangesPerWrite < 1 || maxChangesPerWrite > 10_000_000) {
      throw new RangeError(`state maxChangesPerWrite must be an integer from 1 to 10,000,000, not ${maxChangesPerWrite}`);
    }
    if (options.epoch !== undefined && (typeof options.epoch !== 'string' || options.epoch.length === 0)) {
      throw new RangeError('state epoch must be a non-empty string');
    }
    inspectDir(path);
    const data = join(path, DATA_FILE);
    if (existsSync(data)) {
      const header = checkLmdbHeader(data);
      if (!header.ok) throw corrupt(path, `${DATA_FILE}: ${header.problem}`);
    }
    const release = claimDir(path);
    let env: RootDatabase;
    try {
      env = open({ path, encoding: 'string', maxDbs: MAX_DBS, overlappingSync: false });
    } catch (err) {
      release();
      throw corrupt(path, `it cannot be opened (${(err as Error).message})`, err);
    }
    try {
      const store = await LmdbStateStore.load(path, env, identity, options.epoch ?? null, maxChangesPerWrite);
      store.release = release;
      const capacity = options.removalLog ?? STATE_DEFAULTS.removalLog;
      if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`state removalLog must be an integer ≥ 0, not ${capacity}`);
      store.removalCapacity = capacity;
      return store;
    } catch (err) {
      await env.close().catch(() => {});
      release();
      throw err;
    }
  }

  private static async load(
    path: string,
    env: RootDatabase,
    identity: Record<string, string>,
    epoch: string | null,
    maxChangesPerWrite: number,
  ): Promise<LmdbStateStore> {
    // Named databases are keys of the main one: anything else there is not our store.
    const foreign = [...env.getKeys({ limit: 2000 })].filter((k) => !(DB_NAMES as readonly unknown[]).includes(k) && !(typeof k === 'string' && k.startsWith(ROWS_PREFIX)));
    if (foreign.length > 0) {
      throw new StateError('STATE_NOT_A_STORE', path, `${join(path, DATA_FILE)} is an LMDB file of something else than tidewire (it holds ${foreign.slice(0, 3).map(String).join(', ')}); tidewire never writes into it: point state.dir at an empty or new folder`);
    }
    const dbs = Object.fromEntries(DB_NAMES.map((name) => [name, env.openDB<string, string>({ name, encoding: 'string' })])) as Record<(typeof DB_NAMES)[number], Database<string, string>>;
    const meta = dbs.meta;
    const formatText = meta.get('format');
    if (formatText === undefined) {
      // lmdb creates data.mdb before the first transaction: a crash between the two leaves a file
      // without a marker. That is empty only if nothing else was ever written.
      if (DB_NAMES.some((name) => dbs[name].getKeysCount({ limit: 1 }) > 0)) {
        throw corrupt(path, 'it holds state but no format marker');
      }
      await env.transaction(() => {
        meta.put('format', encodeFormat(STATE_FORMAT_VERSION));
        meta.put('identity', JSON.stringify(identity));
        meta.put('seq', '0');
        if (epoch !== null) meta.put('epoch', epoch);
      });
      return new LmdbStateStore(path, true, env, dbs, { epoch, seq: 0, floor: 0, identity, positions: {}, fingerprints: {} }, maxChangesPerWrite);
    }
    const format = decodeFormat(formatText);
    if (format === null) throw corrupt(path, 'its format marker does not decode');
    if (format > STATE_FORMAT_VERSION || format < 1) {
      throw new StateError(
        'STATE_FORMAT_UNSUPPORTED',
        path,
        `tidewire state in ${path} is in format ${format}, and this tidewire reads format ${STATE_FORMAT_VERSION}` +
          `${format > STATE_FORMAT_VERSION ? ' (it was written by a newer tidewire)' : ''}: run the tidewire that wrote it, or ${rebuildAdvice(path)}`,
      );
    }
    const stored = decodeStringMap(meta.get('identity'));
    if (stored === null) throw corrupt(path, 'its source identity does not decode');
    for (const [source, id] of Object.entries(identity)) {
      if (stored[source] !== undefined && stored[source] !== id) {
        throw new StateError(
          'STATE_FOREIGN_SOURCE',
          path,
          `tidewire state in ${path} was written for source ${source} = ${stored[source]}, but ${source} is now ${id} (another cluster or database): ` +
            `its positions and topics do not belong to it. ${capitalize(rebuildAdvice(path))}`,
        );
      }
    }
    const seqText = meta.get('seq');
    const seq = Number(seqText);
    if (seqText === undefined || !Number.isSafeInteger(seq) || seq < 0) throw corrupt(path, 'its seq does not decode');
    const floorText = meta.get('floor') ?? '0';
    const floor = Number(floorText);
    if (!Number.isSafeInteger(floor) || floor < 0) throw corrupt(path, 'its version floor does not decode');
    if (format < STATE_FORMAT_VERSION) {
      await env.transaction(() => {
        meta.put('format', encodeFormat(STATE_FORMAT_VERSION));
        // No removal log was kept: it reaches back to the stored seq only.
        if (format === 1) meta.put('removalFloor', String(seq));
      });
    }
    const completeText = meta.get('rowsComplete');
    const rowsComplete = completeText === undefined ? [] : decodeStringList(completeText);
    if (rowsComplete === null) throw corrupt(path, 'its list of complete row indexes does not decode');
    const storedEpoch = meta.get('epoch') ?? null;
    const positions = readStrings(dbs.positions);
    const fingerprints = readStrings(dbs.fingerprints);
    const merged = { ...stored, ...identity };
    if (Object.keys(merged).length !== Object.keys(stored).length) {
      await env.transaction(() => meta.put('identity', JSON.stringify(merged)));
    }
    const created = seq === 0 && dbs.topics.getKeysCount({ limit: 1 }) === 0 && Object.keys(positions).length === 0;
    const store = new LmdbStateStore(path, created, env, dbs, { epoch: storedEpoch, seq, floor, identity: merged, positions, fingerprints }, maxChangesPerWrite);
    const removalFloor = Number(meta.get('removalFloor') ?? '0');
    if (!Number.isSafeInteger(removalFloor) || removalFloor < 0) throw corrupt(path, 'its removal log floor does not decode');
    store._removalFloor = removalFloor;
    store._open = store.acceptedOpen = meta.get('open') === '1';
    store.removalCount = dbs.removals.getKeysCount();
    for (const source of rowsComplete) {
      store._rowsComplete.add(source);
      store.acceptedRowsComplete.add(source);
    }
    return store;
  }

  removals(): { readonly floor: number; readonly entries: IterableIterator<StoredRemoval> } {
    const db = this.dbs.removals;
    const dir = this.dir;
    function* entries(): IterableIterator<StoredRemoval> {
      for (const { key, value } of db.getRange({})) {
        const r = decodeRemoval(key, value);
        if (r === null) throw corrupt(dir, `the removal log record ${JSON.stringify(key)} does not decode`);
        yield r;
      }
    }
    return { floor: this._removalFloor, entries: entries() };
  }

  get epoch(): string | null {
    return this._epoch;
  }

  get writes(): number {
    return this.durableWrites;
  }

  get seq(): number {
    return this._seq;
  }

  get openTransaction(): boolean {
    return this._open;
  }

  get versionFloor(): number {
    return this._floor;
  }

  get identity(): SourceIdentity {
    return { ...this._identity };
  }

  positions(): Readonly<Record<string, string>> {
    return { ...this._positions };
  }

  fingerprints(): Readonly<Record<string, string>> {
    return { ...this._fingerprints };
  }

  get topicCount(): number {
    return (this.dbs.topics.getStats() as { entryCount: number }).entryCount;
  }

  *topics(start?: string, end?: string, accept?: (path: string) => boolean): IterableIterator<StoredTopic> {
    const range: { start?: string; end?: string } = {};
    if (start !== undefined) range.start = start;
    if (end !== undefined) range.end = end;
    for (const { key, value } of this.dbs.topics.getRange(range)) {
      if (accept === undefined || accept(key)) yield this.read(key, value);
    }
  }

  get(path: string): StoredTopic | undefined {
    if (typeof path !== 'string' || path.length === 0 || (path.length * 3 > MAX_PATH_BYTES && Buffer.byteLength(path) > MAX_PATH_BYTES)) return undefined;
    const text = this.dbs.topics.get(path);
    if (text === undefined) return undefined;
    return this.read(path, text).checked();
  }

  rowPath(source: string, key: string): string | undefined {
    if (typeof key !== 'string') return undefined;
    return this.rowsOf(source).get(storedRowKey(key));
  }

  rowsComplete(source: string): boolean {
    return this._rowsComplete.has(source);
  }

  resetRows(source: string, complete: boolean): Promise<void> {
    return this.markRows(source, complete, true);
  }

  completeRows(source: string): Promise<void> {
    return this.markRows(source, true, false);
  }

  private markRows(source: string, complete: boolean, clear: boolean): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (typeof source !== 'string' || source.length === 0 || Buffer.byteLength(source) > 400) return Promise.reject(this.invalid('a row index needs a source name of 1 to 400 bytes'));
    let db: Database<string, string>;
    try {
      db = this.rowsOf(source);
    } catch (err) {
      return Promise.reject(err);
    }
    // Written over the marks issued before it, not the durable ones: marks of several sources in
    // one group commit must not undo each other.
    if (complete) this.acceptedRowsComplete.add(source);
    else this.acceptedRowsComplete.delete(source);
    const text = JSON.stringify([...this.acceptedRowsComplete].sort());
    return this.enqueue(
      1,
      () => {
        if (clear) db.clearSync();
        this.dbs.meta.put('rowsComplete', text);
      },
      () => {
        if (complete) this._rowsComplete.add(source);
        else this._rowsComplete.delete(source);
      },
    );
  }

  /** The row index database of `source`, opened (and created) on first use. */
  private rowsOf(source: string): Database<string, string> {
    let db = this.rowDbs.get(source);
    if (db === undefined) {
      try {
        db = this.env.openDB<string, string>({ name: ROWS_PREFIX + source, encoding: 'string' });
      } catch (err) {
        throw this.invalid(`the row index of ${source} cannot be opened (${(err as Error).message}); a store holds at most ${MAX_DBS - DB_NAMES.length} row indexes`, err);
      }
      this.rowDbs.set(source, db);
    }
    return db;
  }

  commit(commit: StateCommit): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let values: Array<string | null>;
    try {
      values = this.encodeChanges(commit);
    } catch (err) {
      return Promise.reject(err);
    }
    const changes = commit.changes;
    const positions = commit.positions ? this.validPositions(commit.positions) : null;
    if (positions instanceof StateError) return Promise.reject(positions);
    this.acceptedSeq = commit.seq;
    let floor = this.acceptedFloor;
    for (const c of commit.changes) if (c.type === 'removal' && c.version !== undefined && c.version > floor) floor = c.version;
    const raisesFloor = floor > this.acceptedFloor;
    this.acceptedFloor = floor;
    const open = commit.open ?? this.acceptedOpen;
    const marksOpen = open !== this.acceptedOpen;
    this.acceptedOpen = open;
    const { topics, meta, removals } = this.dbs;
    const logged: Array<[string, string]> = [];
    for (const c of commit.changes) {
      if (c.type === 'removal' && c.tenant !== undefined) logged.push([removalKey(commit.seq, c.path), encodeRemoval(c.version ?? 1, c.tenant)]);
    }
    // Past its capacity the log forgets its oldest entries in this same transaction; the floor
    // rises to the newest forgotten (this commit's seq when some of its own do not fit).
    const before = this.removalCount;
    const forget = Math.max(0, before + logged.length - this.removalCapacity);
    const fromStored = Math.min(forget, before);
    const fromThis = forget - fromStored;
    this.removalCount = before + logged.length - forget;
    const positionsDb = this.dbs.positions;
    let rows: Array<[Database<string, string>, string, string | null]> | null = null;
    if (commit.rows !== undefined && commit.rows.length > 0) {
      try {
        rows = this.encodeRows(commit.rows);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    let removalFloor = -1;
    return this.enqueue(
      changes.length + (rows?.length ?? 0),
      () => {
        for (let i = 0; i < changes.length; i++) {
          const c = changes[i];
          if (c.type === 'removal') topics.remove(c.path);
          // A Buffer is written as its bytes whatever the encoding (lmdb's types only name V).
          else topics.put(c.path, this.record(c, values[i]!) as unknown as string);
        }
        if (rows !== null) {
          for (const [db, key, path] of rows) {
            if (path === null) db.remove(key);
            else db.put(key, path);
          }
        }
        if (forget > 0) {
          removalFloor = this._removalFloor;
          for (const key of [...removals.getKeys({ limit: fromStored })]) {
            removals.remove(key);
            removalFloor = Math.max(removalFloor, Number(key.slice(0, 16)));
          }
          if (fromThis > 0) removalFloor = commit.seq;
          meta.put('removalFloor', String(removalFloor));
        }
        for (let i = fromThis; i < logged.length; i++) removals.put(logged[i][0], logged[i][1]);
        if (positions) for (const [name, p] of positions) positionsDb.put(name, p);
        meta.put('seq', String(commit.seq));
        if (raisesFloor) meta.put('floor', String(floor));
        if (marksOpen) {
          if (open) meta.put('open', '1');
          else meta.remove('open');
        }
      },
      () => {
        this._seq = commit.seq;
        this._open = open;
        if (raisesFloor) this._floor = floor;
        if (removalFloor >= 0) this._removalFloor = removalFloor;
        if (positions) for (const [name, p] of positions) this._positions[name] = p;
      },
    );
  }

  setFingerprint(table: string, fingerprint: string | null): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (typeof table !== 'string' || table.length === 0 || Buffer.byteLength(table) > MAX_PATH_BYTES) {
      return Promise.reject(this.invalid(`a fingerprint needs a table name of 1 to ${MAX_PATH_BYTES} bytes`));
    }
    if (fingerprint !== null && typeof fingerprint !== 'string') return Promise.reject(this.invalid('a fingerprint is a string, or null to forget it'));
    const db = this.dbs.fingerprints;
    return this.enqueue(
      1,
      () => (fingerprint === null ? db.remove(table) : db.put(table, fingerprint)),
      () => {
        if (fingerprint === null) delete this._fingerprints[table];
        else this._fingerprints[table] = fingerprint;
      },
    );
  }

  setEpoch(epoch: string): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (typeof epoch !== 'string' || epoch.length === 0) return Promise.reject(this.invalid('an epoch is a non-empty string'));
    return this.enqueue(
      1,
      () => this.dbs.meta.put('epoch', epoch),
      () => (this._epoch = epoch),
    );
  }

  setIdentity(identity: SourceIdentity): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let merged: Record<string, string>;
    try {
      merged = { ...this._identity, ...validIdentity(this.dir, identity) };
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(
      1,
      () => this.dbs.meta.put('identity', JSON.stringify(merged)),
      () => (this._identity = merged),
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.writing || this.queue.length > 0) await new Promise<void>((r) => setImmediate(r));
      await this.env.close();
      this.release();
    })();
    return this.closing;
  }

  private refusal(): StateError | null {
    if (this.closing) return new StateError('STATE_CLOSED', this.dir, `the state store in ${this.dir} is closed`);
    return this.failure;
  }

  private invalid(message: string, cause?: unknown): StateError {
    return new StateError('STATE_INVALID_COMMIT', this.dir, `a write to the state in ${this.dir} was refused: ${message}`, { cause });
  }

  /**
   * Everything a write can refuse is checked here, before it is queued: the transaction itself
   * never throws midway. Returns each upsert's value as JSON text (null for a removal).
   */
  private encodeChanges(commit: StateCommit): Array<string | null> {
    if (!commit || !Array.isArray(commit.changes)) throw this.invalid('a commit needs a changes array');
    if (!Number.isSafeInteger(commit.seq) || commit.seq < this.acceptedSeq) {
      throw this.invalid(`a commit's seq must be an integer not below the last one (${this.acceptedSeq}), not ${commit.seq}`);
    }
    const values: Array<string | null> = new Array(commit.changes.length);
    for (let i = 0; i < commit.changes.length; i++) {
      const c = commit.changes[i];
      const path = c?.path;
      if (typeof path !== 'string' || path.length === 0 || (path.length * 3 > MAX_PATH_BYTES && Buffer.byteLength(path) > MAX_PATH_BYTES)) {
        throw this.invalid(`change ${i}: a stored path is a non-empty string of at most ${MAX_PATH_BYTES} UTF-8 bytes`);
      }
      if (c.type === 'removal') {
        if (c.version !== undefined && (!Number.isSafeInteger(c.version) || c.version < 1)) throw this.invalid(`change ${i} (${path}): a removal's version is an integer ≥ 1`);
        values[i] = null;
        continue;
      }
      if (c.type !== 'upsert') throw this.invalid(`change ${i} (${path}): type must be upsert or removal`);
      if (!Number.isSafeInteger(c.version) || c.version < 1 || typeof c.tenant !== 'string' || typeof c.source !== 'string') {
        throw this.invalid(`change ${i} (${path}): an upsert needs a version ≥ 1, a tenant and a source`);
      }
      if (typeof c.value !== 'object' || c.value === null || Array.isArray(c.value)) throw this.invalid(`change ${i} (${path}): the value must be a JSON object`);
      try {
        values[i] = c.valueJson ?? JSON.stringify(c.value);
      } catch (err) {
        throw this.invalid(`change ${i} (${path}): the value is not JSON (${(err as Error).message})`, err);
      }
    }
    return values;
  }

  /**
   * The topic's record as the bytes to put, written into one buffer reused by every put of the
   * transaction (lmdb copies a value during the put inside a transaction): no string of the whole
   * record, no buffer per record.
   */
  private record(c: StoredTopic, valueJson: string): Buffer {
    let n = writeTopic(c, valueJson, this.scratch);
    if (n < 0) {
      this.scratch = Buffer.allocUnsafeSlow(Math.max(2 * this.scratch.length, encodedBound(valueJson.length + 128)));
      n = writeTopic(c, valueJson, this.scratch);
    }
    return this.scratch.subarray(0, n);
  }

  private encodeRows(rows: readonly RowWrite[]): Array<[Database<string, string>, string, string | null]> {
    const out: Array<[Database<string, string>, string, string | null]> = new Array(rows.length);
    let source = '';
    let db: Database<string, string> | null = null;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (typeof r?.key !== 'string') throw this.invalid(`row write ${i}: a row key is a string`);
      if (r.path !== null && (typeof r.path !== 'string' || r.path.length === 0)) throw this.invalid(`row write ${i}: a path is a non-empty string, or null`);
      if (db === null || r.source !== source) {
        source = r.source;
        db = this.rowsOf(source);
      }
      out[i] = [db, storedRowKey(r.key), r.path];
    }
    return out;
  }

  private validPositions(positions: Readonly<Record<string, string>>): Array<[string, string]> | StateError {
    const out = Object.entries(positions);
    for (const [name, p] of out) {
      if (name.length === 0 || Buffer.byteLength(name) > MAX_PATH_BYTES || typeof p !== 'string') {
        return this.invalid(`position ${name}: a position has a non-empty name and a string value`);
      }
    }
    return out;
  }

  private enqueue(changes: number, apply: () => void, durable: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ changes, apply, durable, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // Commits issued in the same turn join this write.
        queueMicrotask(() => void this.write());
      }
    });
  }

  /** Writes what is queued, in order, as durable transactions, one at a time (group commit). */
  private async write(): Promise<void> {
    while (this.queue.length > 0) {
      let n = 0;
      let count = 0;
      while (n < this.queue.length && (n === 0 || count + this.queue[n].changes <= this.maxChangesPerWrite)) count += this.queue[n++].changes;
      const group = this.queue.splice(0, n);
      try {
        await this.env.transaction(() => {
          for (const w of group) w.apply();
        });
      } catch (err) {
        this.failure = new StateError(
          'STATE_WRITE_FAILED',
          this.dir,
          `writing the state in ${this.dir} failed (${(err as Error).message}); nothing after the last durable commit is stored: check the disk (space, permissions, errors) and restart tidewire`,
          { cause: err },
        );
        for (const w of [...group, ...this.queue.splice(0)]) w.reject(this.failure);
        break;
      }
      this.durableWrites++;
      for (const w of group) {
        w.durable();
        w.resolve();
      }
    }
    this.writing = false;
  }

  /** A topic record as read, decoded as far as it is read later (its head checked by `checked()`). */
  private read(path: string, text: unknown): LazyStoredTopic {
    if (typeof text !== 'string') throw this.corruptTopic(path);
    return new LazyStoredTopic(path, text, this.corruptTopic);
  }

  private readonly corruptTopic = (path: string): StateError => corrupt(this.dir, `the record of topic ${path} does not decode`);
}

/** Creates a missing dir; refuses one that holds something else than a store. */
function inspectDir(path: string): void {
  if (!existsSync(path)) {
    mkdirSync(path, { recursive: true });
    return;
  }
  if (!statSync(path).isDirectory()) {
    throw new StateError('STATE_NOT_A_STORE', path, `state.dir ${path} is a file, not a folder: point state.dir at an empty or new folder`);
  }
  const entries = readdirSync(path);
  if (!entries.includes(DATA_FILE)) {
    const others = entries.filter((e) => e !== LOCK_FILE && e !== OWNER_FILE);
    if (others.length === 0) return;
    throw new StateError(
      'STATE_NOT_A_STORE',
      path,
      `state.dir ${path} holds files that are not a tidewire state store (${others.slice(0, 3).join(', ')}${others.length > 3 ? ', …' : ''}); tidewire never writes into it: point state.dir at an empty or new folder`,
    );
  }
}

function validIdentity(dir: string, identity: SourceIdentity): Record<string, string> {
  if (typeof identity !== 'object' || identity === null || Array.isArray(identity)) {
    throw new StateError('STATE_INVALID_COMMIT', dir, `the state store in ${dir} needs an identity: an object of source name → identity string`);
  }
  for (const [k, v] of Object.entries(identity)) {
    if (k.length === 0 || typeof v !== 'string' || v.length === 0) {
      throw new StateError('STATE_INVALID_COMMIT', dir, `the state store in ${dir}: the identity of source ${k || '(empty name)'} must be a non-empty string`);
    }
  }
  return { ...identity };
}

function readStrings(db: Database<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, value } of db.getRange({})) out[key] = value;
  return out;
}

function corrupt(dir: string, what: string, cause?: unknown): StateError {
  return new StateError('STATE_CORRUPT', dir, `tidewire state in ${dir} is damaged: ${what}. ${capitalize(rebuildAdvice(dir))}`, { cause });
}

function capitalize(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

/**
 * The LMDB key of a row key. Row keys are the source's own (a Postgres key's columns as JSON, a
 * Kafka record's key bytes), of any length, empty included: one that is empty, too long for an
 * LMDB key, or starts with the marker is stored as the marker and its SHA-256, so every key has
 * an entry and no two keys share one.
 */
function storedRowKey(key: string): string {
  if (key.length > 0 && key.charCodeAt(0) !== 1 && (key.length * 3 <= MAX_PATH_BYTES || Buffer.byteLength(key) <= MAX_PATH_BYTES)) return key;
  return HASHED_ROW_KEY + createHash('sha256').update(key).digest('base64');
}

/**
 * The hand-off log's record format (issue #15): one ChangeBatch as the values of one or more Kafka
 * records, and back. A record is JSON text:
 *
 *   {"v":1,"epoch":"lx2k-9f3a","seq":42,"part":1,"parts":1,"changes":[
 *     {"type":"value","path":"orders/7","tenant":"default","source":"postgres:public.orders","version":1,"created":${c.before === null},"value":{…}},
 *     {"type":"delta","path":"orders/3","tenant":"default","source":"postgres:public.orders","version":5,"patch":[…]},
 *     {"type":"removal","path":"orders/2","tenant":"default","source":"postgres:public.orders","version":4}],
 *   "rows":[["postgres:public.orders","7","orders/7"],["postgres:public.orders","2",null]],
 *   "position":{"name":"postgres","position":"0/16B3748"}}
 *
 * `rows` (the row index writes of the changes, [source, key, path or null]) and `position` (where
 * the batch brings its source) are what the ingest node's durable state stores with the batch:
 * they let a restarted ingest node store what the log holds and its state did not (see
 * log-recovery.ts). Rows are split over the parts like changes; the position is on the last part.
 *
 * Guarantees:
 * - Versions, seq and epoch are the ingest node's, carried as minted; a delta carries only its
 *   patch (its base is `version - 1`), so an edge rebuilds `after` from the value it holds and
 *   detects a gap when it holds another version (services/topics/replicated-batch.ts).
 * - A batch larger than `maxRecordBytes` is split between changes into parts `1..parts` with the
 *   same seq, each record under the limit; a decoded part is applied only once its batch is whole
 *   (BatchAssembler), so a source transaction stays one batch across the Kafka hop.
 * - What is decoded is checked field by field: a damaged record, a record of another producer or
 *   of another format version throws HandoffError and never becomes state.
 *
 * `v` changes when a reader of the previous format would misread a record; fields it does not
 * know are ignored, so optional ones can be added without it.
 */
import { type JsonObject, isJsonObject } from '../../core/json.ts';
import type { RowWrite, SourcePosition } from '../../core/ingest.ts';
import type { PatchOp } from '../../core/patch.ts';
import type { ChangeBatch, TopicChange } from '../../core/topic.ts';
import type { ReplicatedBatch, ReplicatedChange } from '../topics/replicated-batch.ts';
import type { BatchOrigin } from './handoff.ts';
import { HandoffError } from './handoff-error.ts';

export const LOG_FORMAT_VERSION = 1;

/**
 * Default byte limit of one record's value: half of Kafka's default `message.max.bytes` (1 MB,
 * which bounds a whole record batch with its headers), so a record never nears it.
 */
export const DEFAULT_MAX_RECORD_BYTES = 512 * 1024;

/** One record, decoded: part `part` of `parts` of batch `seq`. */
export interface LogPart {
  readonly epoch: string;
  readonly seq: number;
  readonly part: number;
  readonly parts: number;
  readonly changes: ReplicatedChange[];
  /** More of the same source transaction follows in the next batch (ChangeBatch.continues). */
  readonly continues?: boolean;
  /** The row index writes this part carries. */
  readonly rows?: RowWrite[];
  /** On the last part: the position the batch brings its source to. */
  readonly position?: SourcePosition;
}

/** A batch read back from the log whole, with what it came from. */
export interface LoggedBatch extends ReplicatedBatch, BatchOrigin {}

/**
 * The values of the records that carry `batch`, in order, each at most `maxRecordBytes` bytes.
 * Throws HANDOFF_CHANGE_TOO_LARGE when one change alone does not fit.
 * @example encodeBatch(store.apply(updates)!) // [<Buffer {"v":1,"epoch":…,"seq":1,"part":1,"parts":1,…}>]
 */
export function encodeBatch(batch: ChangeBatch, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES, origin: BatchOrigin = {}): Buffer[] {
  const changes = batch.changes.map(changeText);
  const rows = origin.rows === undefined ? [] : origin.rows.map((w) => JSON.stringify([w.source, w.key, w.path]));
  const position = origin.position === undefined ? '' : `,"position":${JSON.stringify({ name: origin.position.name, position: origin.position.position })}`;
  // The header as long as it can get (ten-digit part numbers, the rows' member, the position), so every part fits whatever its number.
  const room = maxRecordBytes - Buffer.byteLength(header(batch, 9_999_999_999, 9_999_999_999)) - Buffer.byteLength(`],"rows":[]${position}}`);
  const groups: Array<{ changes: string[]; rows: string[] }> = [];
  let group = { changes: [] as string[], rows: [] as string[] };
  let used = 0;
  const items = changes.length + rows.length;
  for (let i = 0; i < items; i++) {
    const isRow = i >= changes.length;
    const text = isRow ? rows[i - changes.length] : changes[i];
    const bytes = Buffer.byteLength(text);
    if (bytes > room) throw tooLarge(batch, i, bytes, maxRecordBytes, origin);
    const empty = isRow ? group.rows.length === 0 : group.changes.length === 0;
    const needed = empty ? bytes : bytes + 1; // the comma
    if (used + needed > room) {
      groups.push(group);
      group = { changes: [], rows: [] };
      used = 0;
      i--;
      continue;
    }
    (isRow ? group.rows : group.changes).push(text);
    used += needed;
  }
  // A batch with no change (the end of a transaction applied in parts) is one record too.
  if (group.changes.length > 0 || group.rows.length > 0 || groups.length === 0) groups.push(group);
  return groups.map((g, i) => {
    const last = i === groups.length - 1;
    const rowsText = g.rows.length === 0 ? '' : `,"rows":[${g.rows.join(',')}]`;
    return Buffer.from(`${header(batch, i + 1, groups.length)}${g.changes.join(',')}]${rowsText}${last ? position : ''}}`);
  });
}

function tooLarge(batch: ChangeBatch, i: number, bytes: number, maxRecordBytes: number, origin: BatchOrigin): HandoffError {
  const what = i < batch.changes.length ? `the ${batch.changes[i].type} of "${batch.changes[i].topic.path}" (version ${batch.changes[i].version})` : `the row index entry of key ${JSON.stringify(origin.rows![i - batch.changes.length].key)}`;
  return new HandoffError(
    'HANDOFF_CHANGE_TOO_LARGE',
    `${what} in batch ${batch.seq} takes ${bytes} bytes in a hand-off record, over the limit of ${maxRecordBytes}: ` +
      'raise the hand-off record limit (and the hand-off topic\'s max.message.bytes with it)',
  );
}

function header(batch: ChangeBatch, part: number, parts: number): string {
  const continues = batch.continues === true ? '"continues":true,' : '';
  return `{"v":${LOG_FORMAT_VERSION},"epoch":${JSON.stringify(batch.epoch)},"seq":${batch.seq},"part":${part},"parts":${parts},${continues}"changes":[`;
}

function changeText(c: TopicChange): string {
  const { path, tenant, source } = c.topic;
  const head = `{"type":"${c.type}","path":${JSON.stringify(path)},"tenant":${JSON.stringify(tenant)},"source":${JSON.stringify(source)},"version":${c.version}`;
  switch (c.type) {
    case 'value':
      return `${head},"created":${c.before === null},"value":${c.afterJson ?? JSON.stringify(c.after)}}`;
    case 'delta':
      return `${head},"patch":${JSON.stringify(c.patch)}}`;
    case 'removal':
      return `${head}}`;
  }
}

/** Decodes one record's value; throws HandoffError for anything but a hand-off record this node reads. */
export function decodeRecord(value: Buffer | string | null): LogPart {
  if (value === null) throw invalid('a record without a value (a tombstone)');
  let doc: unknown;
  try {
    doc = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    throw invalid(`not JSON (${(err as Error).message})`, err);
  }
  if (!isJsonObject(doc)) throw invalid('not a JSON object');
  if (!Object.hasOwn(doc, 'v')) throw invalid('no format version ("v")');
  if (doc.v !== LOG_FORMAT_VERSION) {
    throw new HandoffError(
      'HANDOFF_RECORD_VERSION',
      `a hand-off record in format ${JSON.stringify(doc.v)}, this node reads format ${LOG_FORMAT_VERSION}: run the same tidewire version on the ingest and edge nodes (upgrade edges first)`,
    );
  }
  const epoch = doc.epoch;
  if (typeof epoch !== 'string' || epoch === '') throw invalid('"epoch" is not a non-empty string');
  const seq = positive(doc.seq, 'seq');
  const parts = positive(doc.parts, 'parts');
  const part = positive(doc.part, 'part');
  if (part > parts) throw invalid(`part ${part} of ${parts}`);
  const changes = doc.changes;
  if (!Array.isArray(changes)) throw invalid(`batch ${seq}: "changes" is not an array`);
  if (doc.continues !== undefined && doc.continues !== true) throw invalid(`batch ${seq}: "continues" is neither true nor absent`);
  const decoded = changes.map((c, i) => decodeChange(c, `batch ${seq} part ${part}, change ${i}`));
  const decodedPart: LogPart = doc.continues === true ? { epoch, seq, part, parts, changes: decoded, continues: true } : { epoch, seq, part, parts, changes: decoded };
  if (doc.rows === undefined && doc.position === undefined) return decodedPart;
  return { ...decodedPart, ...decodeOrigin(doc, `batch ${seq} part ${part}`, part === parts) };
}

function decodeOrigin(doc: JsonObject, at: string, last: boolean): { rows?: RowWrite[]; position?: SourcePosition } {
  const out: { rows?: RowWrite[]; position?: SourcePosition } = {};
  if (doc.rows !== undefined) {
    if (!Array.isArray(doc.rows)) throw invalid(`${at}: "rows" is not an array`);
    out.rows = doc.rows.map((r, i) => {
      if (!Array.isArray(r) || r.length !== 3 || typeof r[0] !== 'string' || typeof r[1] !== 'string' || (r[2] !== null && typeof r[2] !== 'string')) {
        throw invalid(`${at}, row ${i}: not [source, key, path or null]`);
      }
      return { source: r[0], key: r[1], path: r[2] };
    });
  }
  if (doc.position !== undefined) {
    const p = doc.position;
    if (!last) throw invalid(`${at}: a "position" on a part that is not the last`);
    if (!isJsonObject(p) || typeof p.name !== 'string' || p.name === '' || typeof p.position !== 'string') throw invalid(`${at}: "position" is not {"name", "position"} strings`);
    out.position = { name: p.name, position: p.position };
  }
  return out;
}

function decodeChange(c: unknown, at: string): ReplicatedChange {
  if (!isJsonObject(c)) throw invalid(`${at}: not an object`);
  const { type, path, tenant, source } = c;
  if (typeof path !== 'string' || path === '') throw invalid(`${at}: "path" is not a non-empty string`);
  if (typeof tenant !== 'string' || tenant === '') throw invalid(`${at}: "tenant" is not a non-empty string`);
  if (typeof source !== 'string') throw invalid(`${at}: "source" is not a string`);
  const version = positive(c.version, `${at}: version`);
  switch (type) {
    case 'value':
      if (!isJsonObject(c.value)) throw invalid(`${at}: "value" is not an object`);
      if (typeof c.created !== 'boolean') throw invalid(`${at}: "created" is not a boolean`);
      return { type, path, tenant, source, version, value: c.value, created: c.created };
    case 'delta':
      return { type, path, tenant, source, version, patch: decodePatch(c.patch, at) };
    case 'removal':
      return { type, path, tenant, source, version };
    default:
      throw invalid(`${at}: "type" is ${JSON.stringify(type)}, not value, delta or removal`);
  }
}

function decodePatch(patch: unknown, at: string): PatchOp[] {
  if (!Array.isArray(patch) || patch.length === 0) throw invalid(`${at}: "patch" is not a non-empty array`);
  for (const op of patch as unknown[]) {
    if (!isJsonObject(op) || typeof op.path !== 'string') throw invalid(`${at}: a patch operation is not an object with a string "path"`);
    if (op.op === 'remove') continue;
    if ((op.op !== 'add' && op.op !== 'replace') || !Object.hasOwn(op, 'value')) throw invalid(`${at}: a patch operation is not add or replace with a value, nor remove`);
  }
  return patch as PatchOp[];
}

function positive(n: unknown, what: string): number {
  if (!Number.isSafeInteger(n) || (n as number) < 1) throw invalid(`"${what}" is not a positive integer`);
  return n as number;
}

function invalid(why: string, cause?: unknown): HandoffError {
  return new HandoffError(
    'HANDOFF_RECORD_INVALID',
    `not a tidewire hand-off record: ${why}. The hand-off topic must be written by tidewire's ingest node alone; a damaged topic is rebuilt by recreating it and restarting the ingest node`,
    { cause },
  );
}

/**
 * Joins the parts of each batch as they are read, in log order: a batch comes out once its last
 * part is in, never before. Parts of one batch are consecutive in the log (one producer, one
 * partition, sent in order), so anything else — a part missing, a batch starting with part 2 —
 * is HANDOFF_PART_ORDER. It holds the parts of one batch at a time, which the ingest node held whole.
 */
export class BatchAssembler {
  private held: LogPart[] = [];

  /** True while some parts of a batch are in and its last is not. */
  get pending(): boolean {
    return this.held.length > 0;
  }

  /** Takes the next part read; returns the batch it completes, or null while parts are missing. */
  add(part: LogPart): LoggedBatch | null {
    const first = this.held[0];
    if (first === undefined ? part.part !== 1 : part.seq !== first.seq || part.epoch !== first.epoch || part.parts !== first.parts || part.part !== this.held.length + 1) {
      const was = first === undefined ? 'no batch was started' : `part ${this.held.length} of ${first.parts} of batch ${first.seq} came before`;
      this.held = [];
      throw new HandoffError('HANDOFF_PART_ORDER', `part ${part.part} of ${part.parts} of batch ${part.seq} read where ${was}: a part is missing from the hand-off log, or reading started inside a batch`);
    }
    if (part.parts === 1) return part;
    this.held.push(part);
    if (part.part < part.parts) return null;
    const held = this.held;
    this.held = [];
    const changes = held.flatMap((p) => p.changes);
    const batch: LoggedBatch = part.continues === true ? { epoch: part.epoch, seq: part.seq, changes, continues: true } : { epoch: part.epoch, seq: part.seq, changes };
    const rows = held.flatMap((p) => p.rows ?? []);
    if (rows.length === 0 && part.position === undefined) return batch;
    return { ...batch, ...(rows.length > 0 ? { rows } : {}), ...(part.position !== undefined ? { position: part.position } : {}) };
  }
}

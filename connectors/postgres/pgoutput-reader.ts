/**
 * Our pgoutput reader (protocol version 1): one parse function per message, values left as the
 * text Postgres sent. pgoutput-values.ts converts that text exactly as it converts snapshot rows,
 * so a row looks the same whichever way it arrived (no JS Date, no rounded int8 or numeric).
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 *
 * Field names follow the messages' documentation (and pg-logical-replication 2.x, which this
 * replaces): `new`, `old`, `key`, `relation`, `commitLsn`, `commitEndLsn`, `commitTime`.
 */
import { PG_EPOCH_US } from './standby-status.ts';

/** First byte of each pgoutput message. */
export const PgoutputTag = {
  Begin: 0x42, // B
  Commit: 0x43, // C
  Origin: 0x4f, // O
  Relation: 0x52, // R
  Type: 0x59, // Y
  Insert: 0x49, // I
  Update: 0x55, // U
  Delete: 0x44, // D
  Truncate: 0x54, // T
  Message: 0x4d, // M
} as const;

/** A column value: the text Postgres sent, null for SQL NULL, undefined for an unchanged TOAST value. */
export type TupleValue = string | null | undefined | Buffer;
export type Tuple = Record<string, TupleValue>;

export interface RelationColumn {
  /** 1 when the column is part of the replica identity key. */
  readonly flags: number;
  readonly name: string;
  readonly typeOid: number;
  readonly typeMod: number;
  /** From a Type message sent earlier for this OID (non-built-in types), else null. */
  readonly typeSchema: string | null;
  readonly typeName: string | null;
}

export interface RelationMessage {
  readonly tag: 'relation';
  readonly relationOid: number;
  readonly schema: string;
  readonly name: string;
  readonly replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  readonly columns: readonly RelationColumn[];
  readonly keyColumns: readonly string[];
}

export interface BeginMessage {
  readonly tag: 'begin';
  /** The final LSN of the transaction (where its commit record starts), `X/Y`. */
  readonly commitLsn: string;
  /** Microseconds since the Unix epoch. */
  readonly commitTime: bigint;
  readonly xid: number;
}

export interface CommitMessage {
  readonly tag: 'commit';
  readonly flags: number;
  readonly commitLsn: string;
  /** The end LSN of the transaction: what is acknowledged once it is applied. */
  readonly commitEndLsn: string;
  readonly commitTime: bigint;
}

export interface OriginMessage {
  readonly tag: 'origin';
  readonly originLsn: string;
  readonly originName: string;
}

export interface TypeMessage {
  readonly tag: 'type';
  readonly typeOid: number;
  readonly typeSchema: string;
  readonly typeName: string;
}

export interface InsertMessage {
  readonly tag: 'insert';
  readonly relation: RelationMessage;
  readonly new: Tuple;
}

export interface UpdateMessage {
  readonly tag: 'update';
  readonly relation: RelationMessage;
  /** The old key (replica identity default or index, when the key changed). */
  readonly key: Tuple | null;
  /** The whole old row (replica identity full). */
  readonly old: Tuple | null;
  readonly new: Tuple;
}

export interface DeleteMessage {
  readonly tag: 'delete';
  readonly relation: RelationMessage;
  readonly key: Tuple | null;
  readonly old: Tuple | null;
}

export interface TruncateMessage {
  readonly tag: 'truncate';
  readonly cascade: boolean;
  readonly restartIdentity: boolean;
  readonly relations: readonly RelationMessage[];
}

export interface LogicalMessage {
  readonly tag: 'message';
  readonly flags: number;
  readonly transactional: boolean;
  readonly messageLsn: string;
  readonly prefix: string;
  readonly content: Buffer;
}

/**
 * A message the reader could not read. Returned rather than thrown: decoding runs inside the
 * socket's data handler, where a throw would take the whole process down.
 */
export interface ParseFailure {
  readonly tag: 'parse-failure';
  readonly error: Error;
}

export type PgoutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage
  | ParseFailure;

const END_OF_MESSAGE = 'unexpected end of message';

/** Reads big-endian fields from `buf` between `offset` and `end`; every read checks the bounds. */
export class BufferReader {
  constructor(
    public buf: Buffer,
    public offset: number,
    public end: number = buf.length,
  ) {}

  need(n: number): void {
    if (this.end - this.offset < n) throw new Error(END_OF_MESSAGE);
  }

  uint8(): number {
    this.need(1);
    return this.buf[this.offset++];
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  /** An LSN as Postgres prints it: upper-case hex halves, `16/B374D848`. */
  lsn(): string {
    const hi = this.uint32();
    const lo = this.uint32();
    return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
  }

  /** A timestamp (µs since 2000-01-01) as µs since the Unix epoch. */
  time(): bigint {
    return this.uint64() + PG_EPOCH_US;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const nul = this.buf.indexOf(0, this.offset);
    if (nul < 0 || nul >= this.end) throw new Error(END_OF_MESSAGE);
    const s = this.buf.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw new Error(`negative length ${n}`);
    this.need(n);
    return this.buf.subarray(this.offset, (this.offset += n));
  }
}

/**
 * Decodes one replication connection's pgoutput messages. Keeps the Relation and Type messages
 * seen so far: row changes name their relation by OID only, and Postgres sends a relation's
 * description once per connection (again after it changed).
 */
export class PgoutputReader {
  private readonly relations = new Map<number, RelationMessage>();
  private readonly types = new Map<number, { typeSchema: string; typeName: string }>();
  private readonly reader = new BufferReader(Buffer.alloc(0), 0);

  /** Decodes the message in `buf` from `offset` to its end; never throws. */
  read(buf: Buffer, offset = 0): PgoutputMessage {
    const r = this.reader;
    r.buf = buf;
    r.offset = offset;
    r.end = buf.length;
    try {
      return this.parse(r);
    } catch (err) {
      return { tag: 'parse-failure', error: err instanceof Error ? err : new Error(String(err)) };
    }
  }

  private parse(r: BufferReader): PgoutputMessage {
    const tag = r.uint8();
    switch (tag) {
      case PgoutputTag.Insert:
        return this.parseInsert(r);
      case PgoutputTag.Update:
        return this.parseUpdate(r);
      case PgoutputTag.Delete:
        return this.parseDelete(r);
      case PgoutputTag.Begin:
        return parseBegin(r);
      case PgoutputTag.Commit:
        return parseCommit(r);
      case PgoutputTag.Relation:
        return this.parseRelation(r);
      case PgoutputTag.Type:
        return this.parseType(r);
      case PgoutputTag.Truncate:
        return this.parseTruncate(r);
      case PgoutputTag.Origin:
        return parseOrigin(r);
      case PgoutputTag.Message:
        return parseLogicalMessage(r);
      default:
        throw new Error(`unknown pgoutput message ${JSON.stringify(String.fromCharCode(tag))} (0x${tag.toString(16)})`);
    }
  }

  private parseRelation(r: BufferReader): RelationMessage {
    const relationOid = r.int32();
    const schema = r.cstring();
    const name = r.cstring();
    const replicaIdentity = readReplicaIdentity(r.uint8());
    const n = r.int16();
    const columns: RelationColumn[] = new Array(Math.max(0, n));
    const keyColumns: string[] = [];
    for (let i = 0; i < n; i++) {
      const flags = r.uint8();
      const colName = r.cstring();
      const typeOid = r.int32();
      const typeMod = r.int32();
      const known = this.types.get(typeOid);
      columns[i] = { flags, name: colName, typeOid, typeMod, typeSchema: known?.typeSchema ?? null, typeName: known?.typeName ?? null };
      if (flags & 1) keyColumns.push(colName);
    }
    const msg: RelationMessage = { tag: 'relation', relationOid, schema, name, replicaIdentity, columns, keyColumns };
    this.relations.set(relationOid, msg);
    return msg;
  }

  private parseType(r: BufferReader): TypeMessage {
    const typeOid = r.int32();
    const typeSchema = r.cstring();
    const typeName = r.cstring();
    this.types.set(typeOid, { typeSchema, typeName });
    return { tag: 'type', typeOid, typeSchema, typeName };
  }

  private parseInsert(r: BufferReader): InsertMessage {
    const relation = this.relation(r.int32());
    r.uint8(); // 'N'
    return { tag: 'insert', relation, new: readTuple(r, relation, null) };
  }

  private parseUpdate(r: BufferReader): UpdateMessage {
    const relation = this.relation(r.int32());
    const sub = r.uint8();
    if (sub === 0x4b /* K */) {
      const key = readKeyTuple(r, relation);
      r.uint8(); // 'N'
      return { tag: 'update', relation, key, old: null, new: readTuple(r, relation, null) };
    }
    if (sub === 0x4f /* O */) {
      const old = readTuple(r, relation, null);
      r.uint8(); // 'N'
      // An unchanged TOAST value in the new row is the old row's value (replica identity full).
      return { tag: 'update', relation, key: null, old, new: readTuple(r, relation, old) };
    }
    if (sub === 0x4e /* N */) return { tag: 'update', relation, key: null, old: null, new: readTuple(r, relation, null) };
    throw new Error(`unknown update submessage ${JSON.stringify(String.fromCharCode(sub))}`);
  }

  private parseDelete(r: BufferReader): DeleteMessage {
    const relation = this.relation(r.int32());
    const sub = r.uint8();
    if (sub === 0x4b /* K */) return { tag: 'delete', relation, key: readKeyTuple(r, relation), old: null };
    if (sub === 0x4f /* O */) return { tag: 'delete', relation, key: null, old: readTuple(r, relation, null) };
    throw new Error(`unknown delete submessage ${JSON.stringify(String.fromCharCode(sub))}`);
  }

  private parseTruncate(r: BufferReader): TruncateMessage {
    const n = r.int32();
    const flags = r.uint8();
    const relations: RelationMessage[] = [];
    for (let i = 0; i < n; i++) relations.push(this.relation(r.int32()));
    return { tag: 'truncate', cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0, relations };
  }

  private relation(oid: number): RelationMessage {
    const relation = this.relations.get(oid);
    if (relation === undefined) throw new Error(`a row change for relation ${oid} before its Relation message`);
    return relation;
  }
}

function parseBegin(r: BufferReader): BeginMessage {
  const commitLsn = r.lsn();
  const commitTime = r.time();
  return { tag: 'begin', commitLsn, commitTime, xid: r.int32() };
}

function parseCommit(r: BufferReader): CommitMessage {
  const flags = r.uint8();
  const commitLsn = r.lsn();
  const commitEndLsn = r.lsn();
  return { tag: 'commit', flags, commitLsn, commitEndLsn, commitTime: r.time() };
}

function parseOrigin(r: BufferReader): OriginMessage {
  const originLsn = r.lsn();
  return { tag: 'origin', originLsn, originName: r.cstring() };
}

function parseLogicalMessage(r: BufferReader): LogicalMessage {
  const flags = r.uint8();
  const messageLsn = r.lsn();
  const prefix = r.cstring();
  const content = r.bytes(r.int32());
  return { tag: 'message', flags, transactional: (flags & 1) !== 0, messageLsn, prefix, content };
}

function readReplicaIdentity(ident: number): RelationMessage['replicaIdentity'] {
  switch (ident) {
    case 0x64 /* d */:
      return 'default';
    case 0x6e /* n */:
      return 'nothing';
    case 0x66 /* f */:
      return 'full';
    case 0x69 /* i */:
      return 'index';
    default:
      throw new Error(`unknown replica identity ${JSON.stringify(String.fromCharCode(ident))}`);
  }
}

/**
 * A key-only tuple ('K'): Postgres sends every column, NULL for those outside the key; only the
 * key columns are kept (a key column is never NULL).
 */
function readKeyTuple(r: BufferReader, relation: RelationMessage): Tuple {
  const tuple = readTuple(r, relation, null);
  const key: Tuple = Object.create(null);
  for (const k of relation.keyColumns) key[k] = tuple[k] === null ? undefined : tuple[k];
  return key;
}

/**
 * TupleData. The hot path of ingest: bounds checked inline and each text value read with one
 * Buffer#toString (a subarray plus TextDecoder#decode per value was ~15% of ingest CPU).
 */
function readTuple(r: BufferReader, relation: RelationMessage, unchangedToastFallback: Tuple | null): Tuple {
  const b = r.buf;
  const end = r.end;
  let p = r.offset;
  if (end - p < 2) throw new Error(END_OF_MESSAGE);
  const nfields = b.readInt16BE(p);
  p += 2;
  const { columns } = relation;
  const tuple: Tuple = Object.create(null);
  for (let i = 0; i < nfields; i++) {
    const column = columns[i];
    if (column === undefined) throw new Error(`tuple has ${nfields} columns, the relation ${columns.length}`);
    if (p >= end) throw new Error(END_OF_MESSAGE);
    const kind = b[p++];
    switch (kind) {
      case 0x74 /* t: text */: {
        if (end - p < 4) throw new Error(END_OF_MESSAGE);
        const size = b.readInt32BE(p);
        p += 4;
        if (size < 0 || end - p < size) throw new Error(END_OF_MESSAGE);
        tuple[column.name] = b.toString('utf8', p, p + size);
        p += size;
        break;
      }
      case 0x6e /* n: null */:
        tuple[column.name] = null;
        break;
      case 0x75 /* u: unchanged TOAST value, not sent */:
        tuple[column.name] = unchangedToastFallback?.[column.name];
        break;
      case 0x62 /* b: binary (not requested by us) */: {
        if (end - p < 4) throw new Error(END_OF_MESSAGE);
        const size = b.readInt32BE(p);
        p += 4;
        if (size < 0 || end - p < size) throw new Error(END_OF_MESSAGE);
        tuple[column.name] = b.subarray(p, p + size);
        p += size;
        break;
      }
      default:
        throw new Error(`unknown attribute kind ${JSON.stringify(String.fromCharCode(kind))}`);
    }
  }
  r.offset = p;
  return tuple;
}

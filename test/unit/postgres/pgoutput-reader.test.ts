// Our pgoutput reader, fed hand-built wire messages: every message type decodes to what was
// encoded, tuples stay the raw text Postgres sent (no Date, no rounded int8, unchanged TOAST as
// undefined), and a message cut at any byte is a parse failure, never a wrong message. Then the
// replication framing around it: XLogData and keepalive frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type PgoutputMessage, PgoutputReader } from '../../../connectors/postgres/pgoutput-reader.ts';
import { ReplicationFrameReader } from '../../../connectors/postgres/replication-connection.ts';

/** Builds pgoutput messages: https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html */
class Wire {
  private parts: Buffer[] = [];
  byte(v: number | string): this {
    this.parts.push(Buffer.from([typeof v === 'string' ? v.charCodeAt(0) : v]));
    return this;
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  int64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    this.parts.push(Buffer.from(`${s}\0`, 'utf8'));
    return this;
  }
  text(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.byte('t').int32(b.length).bytes(b);
  }
  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const PG_EPOCH_US = 946_684_800_000_000n;
const lsnText = (v: bigint) => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

const COLUMNS = [
  { flags: 1, name: 'id', typeOid: 20, typeMod: -1 },
  { flags: 0, name: 'at', typeOid: 1184, typeMod: -1 },
  { flags: 0, name: 'body', typeOid: 25, typeMod: -1 },
  { flags: 0, name: 'mood', typeOid: 70001, typeMod: -1 },
];
const typeMsg = new Wire().byte('Y').int32(70001).str('public').str('mood').build();
const relationMsg = (() => {
  const w = new Wire().byte('R').int32(16400).str('public').str('events').byte('d').int16(COLUMNS.length);
  for (const c of COLUMNS) w.byte(c.flags).str(c.name).int32(c.typeOid).int32(c.typeMod);
  return w.build();
})();

/** A reader that has seen the Type and Relation messages. */
function primed(): PgoutputReader {
  const reader = new PgoutputReader();
  assert.equal(reader.read(typeMsg).tag, 'type');
  assert.equal(reader.read(relationMsg).tag, 'relation');
  return reader;
}

/** A decoded message as plain data: tuples spread out of their null prototype, relations by OID. */
function plain(m: PgoutputMessage): unknown {
  if (m.tag === 'parse-failure') return { tag: m.tag, error: m.error.message };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === 'relation') out[k] = (v as { relationOid: number }).relationOid;
    else if (k === 'relations') out[k] = (v as Array<{ relationOid: number }>).map((r) => r.relationOid);
    else if (k === 'new' || k === 'old' || k === 'key') out[k] = v === null ? null : { ...(v as object) };
    else out[k] = v;
  }
  return out;
}

test('tuples arrive as raw text, NULL as null, unchanged TOAST as undefined', () => {
  const reader = primed();
  const ins = reader.read(
    new Wire().byte('I').int32(16400).byte('N').int16(4).text('9007199254740993').text('2024-05-06 07:08:09.123456+00').byte('n').text('happy').build(),
  );
  assert.equal(ins.tag, 'insert');
  assert.deepEqual(plain(ins), { tag: 'insert', relation: 16400, new: { id: '9007199254740993', at: '2024-05-06 07:08:09.123456+00', body: null, mood: 'happy' } });
  const upd = reader.read(new Wire().byte('U').int32(16400).byte('N').int16(4).text('1').text('2024-05-06 07:08:09+00').byte('u').text('sad').build());
  assert.equal(upd.tag, 'update');
  const tuple = (upd as { new: Record<string, unknown> }).new;
  assert.ok('body' in tuple && tuple.body === undefined, 'unchanged TOAST column present as undefined');
});

test('a Relation message names its key columns and the types a Type message described', () => {
  const reader = new PgoutputReader();
  reader.read(typeMsg);
  const rel = reader.read(relationMsg);
  assert.equal(rel.tag, 'relation');
  if (rel.tag !== 'relation') return;
  assert.deepEqual(rel.keyColumns, ['id']);
  assert.equal(rel.replicaIdentity, 'default');
  assert.deepEqual(rel.columns[3], { flags: 0, name: 'mood', typeOid: 70001, typeMod: -1, typeSchema: 'public', typeName: 'mood' });
  assert.deepEqual(rel.columns[0], { flags: 1, name: 'id', typeOid: 20, typeMod: -1, typeSchema: null, typeName: null });
});

test('an unreadable message becomes a parse-failure value, with what went wrong', () => {
  const reader = primed();
  const cases: Array<[Buffer, RegExp]> = [
    [new Wire().byte('I').int32(99999).byte('N').int16(0).build(), /relation 99999 before its Relation message/],
    [new Wire().byte('Z').build(), /unknown pgoutput message "Z"/],
    [new Wire().byte('I').int32(16400).byte('N').int16(5).text('1').text('2').text('3').text('4').text('5').build(), /tuple has 5 columns, the relation 4/],
    [new Wire().byte('I').int32(16400).byte('N').int16(1).byte('x').build(), /unknown attribute kind "x"/],
    [new Wire().byte('U').int32(16400).byte('Q').build(), /unknown update submessage "Q"/],
    [new Wire().byte('I').int32(16400).byte('N').int16(1).byte('t').int32(-5).build(), /unexpected end of message/],
    [Buffer.alloc(0), /unexpected end of message/],
  ];
  for (const [buf, why] of cases) {
    const msg = reader.read(buf);
    assert.equal(msg.tag, 'parse-failure', why.source);
    if (msg.tag === 'parse-failure') assert.match(msg.error.message, why);
  }
  // The reader is not left in a bad state by a failure.
  assert.equal(reader.read(new Wire().byte('I').int32(16400).byte('N').int16(1).text('7').build()).tag, 'insert');
});

// ── every message type, any content, cut at every byte ────────────────────────────────────────

type Attr = { kind: 't'; s: string } | { kind: 'n' } | { kind: 'u' };
const text = fc.string({ unit: 'binary', maxLength: 30 });
const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((s) => !s.includes('\0'));
const lsn = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n });
const time = fc.bigInt({ min: 0n, max: (1n << 62n) });
const attr = (toast: boolean): fc.Arbitrary<Attr> =>
  fc.oneof(text.map((s) => ({ kind: 't' as const, s })), fc.constant({ kind: 'n' as const }), ...(toast ? [fc.constant({ kind: 'u' as const })] : []));
const tupleOf = (toast: boolean) => fc.array(attr(toast), { minLength: 4, maxLength: 4 });

function writeTuple(w: Wire, attrs: Attr[]): void {
  w.int16(attrs.length);
  for (const a of attrs) (a.kind === 't' ? w.text(a.s) : w.byte(a.kind));
}
function tupleValue(attrs: Attr[], fallback: Record<string, unknown> | null = null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  attrs.forEach((a, i) => {
    const col = COLUMNS[i].name;
    out[col] = a.kind === 't' ? a.s : a.kind === 'n' ? null : fallback?.[col];
  });
  return out;
}
const keyOf = (attrs: Attr[]) => ({ id: attrs[0].kind === 't' ? attrs[0].s : undefined });

/** Each arbitrary gives a message's bytes and what the reader should make of them. */
const messages: fc.Arbitrary<{ bytes: Buffer; expected: unknown }> = fc.oneof(
  fc.tuple(lsn, time, fc.integer()).map(([l, t, xid]) => ({
    bytes: new Wire().byte('B').int64(l).int64(t).int32(xid).build(),
    expected: { tag: 'begin', commitLsn: lsnText(l), commitTime: t + PG_EPOCH_US, xid },
  })),
  fc.tuple(fc.nat(255), lsn, lsn, time).map(([flags, l, e, t]) => ({
    bytes: new Wire().byte('C').byte(flags).int64(l).int64(e).int64(t).build(),
    expected: { tag: 'commit', flags, commitLsn: lsnText(l), commitEndLsn: lsnText(e), commitTime: t + PG_EPOCH_US },
  })),
  fc.tuple(lsn, name).map(([l, n]) => ({ bytes: new Wire().byte('O').int64(l).str(n).build(), expected: { tag: 'origin', originLsn: lsnText(l), originName: n } })),
  fc.tuple(fc.integer(), name, name).map(([oid, s, n]) => ({ bytes: new Wire().byte('Y').int32(oid).str(s).str(n).build(), expected: { tag: 'type', typeOid: oid, typeSchema: s, typeName: n } })),
  fc.tuple(fc.integer(), name, name, fc.constantFrom('d', 'n', 'f', 'i'), fc.array(fc.tuple(fc.nat(1), name, fc.integer(), fc.integer()), { maxLength: 5 })).map(([oid, s, n, ident, cols]) => {
    const w = new Wire().byte('R').int32(oid).str(s).str(n).byte(ident).int16(cols.length);
    for (const [f, cn, t, m] of cols) w.byte(f).str(cn).int32(t).int32(m);
    const identity = { d: 'default', n: 'nothing', f: 'full', i: 'index' }[ident];
    // Type OIDs here are random: one may be 70001, which the primed reader knows as public.mood.
    const columns = cols.map(([f, cn, t, m]) => ({ flags: f, name: cn, typeOid: t, typeMod: m, typeSchema: t === 70001 ? 'public' : null, typeName: t === 70001 ? 'mood' : null }));
    return { bytes: w.build(), expected: { tag: 'relation', relationOid: oid, schema: s, name: n, replicaIdentity: identity, columns, keyColumns: cols.filter(([f]) => f & 1).map(([, cn]) => cn) } };
  }),
  tupleOf(true).map((t) => {
    const w = new Wire().byte('I').int32(16400).byte('N');
    writeTuple(w, t);
    return { bytes: w.build(), expected: { tag: 'insert', relation: 16400, new: tupleValue(t) } };
  }),
  fc.tuple(fc.constantFrom('K', 'O', 'N'), tupleOf(false), tupleOf(true)).map(([sub, before, after]) => {
    const w = new Wire().byte('U').int32(16400).byte(sub);
    if (sub !== 'N') {
      writeTuple(w, before);
      w.byte('N');
    }
    writeTuple(w, after);
    const old = sub === 'O' ? tupleValue(before) : null;
    return { bytes: w.build(), expected: { tag: 'update', relation: 16400, key: sub === 'K' ? keyOf(before) : null, old, new: tupleValue(after, old) } };
  }),
  fc.tuple(fc.constantFrom('K', 'O'), tupleOf(false)).map(([sub, before]) => {
    const w = new Wire().byte('D').int32(16400).byte(sub);
    writeTuple(w, before);
    return { bytes: w.build(), expected: { tag: 'delete', relation: 16400, key: sub === 'K' ? keyOf(before) : null, old: sub === 'O' ? tupleValue(before) : null } };
  }),
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.nat(3)).map(([n, flags]) => {
    const w = new Wire().byte('T').int32(n).byte(flags);
    for (let i = 0; i < n; i++) w.int32(16400);
    return { bytes: w.build(), expected: { tag: 'truncate', cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0, relations: Array(n).fill(16400) } };
  }),
  fc.tuple(fc.nat(1), lsn, name, fc.uint8Array({ maxLength: 20 })).map(([flags, l, prefix, content]) => ({
    bytes: new Wire().byte('M').byte(flags).int64(l).str(prefix).int32(content.length).bytes(Buffer.from(content)).build(),
    expected: { tag: 'message', flags, transactional: flags === 1, messageLsn: lsnText(l), prefix, content: Buffer.from(content) },
  })),
);

test('every message type decodes to what was encoded, and a message cut at any byte is a parse failure', () => {
  fc.assert(
    fc.property(messages, ({ bytes, expected }) => {
      assert.deepEqual(plain(primed().read(bytes)), expected);
      // Also at an offset inside a larger buffer, as XLogData hands it over.
      assert.deepEqual(plain(primed().read(Buffer.concat([Buffer.alloc(25, 0xee), bytes]), 25)), expected);
      for (let cut = 0; cut < bytes.length; cut++) {
        const m = primed().read(bytes.subarray(0, cut));
        assert.equal(m.tag, 'parse-failure', `cut at ${cut} of ${bytes.length}: ${JSON.stringify(plain(m), (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      }
    }),
    { seed: 7, numRuns: 1500 },
  );
});

// ── replication framing ─────────────────────────────────────────────────────────────────────

function frames() {
  const seen: Array<{ kind: string; value: unknown; bytes?: number }> = [];
  const reader = new ReplicationFrameReader({
    message: (msg, bytes) => seen.push({ kind: 'message', value: plain(msg), bytes }),
    keepalive: (walEnd, replyRequested) => seen.push({ kind: 'keepalive', value: { walEnd, replyRequested } }),
    malformed: (error) => seen.push({ kind: 'malformed', value: error.message }),
  });
  return { reader, seen };
}

test('XLogData frames carry one pgoutput message each; keepalives their WAL end and whether to reply', () => {
  const { reader, seen } = frames();
  const xlog = (payload: Buffer) => new Wire().byte('w').int64(0x16_0000_0000n).int64(0x16_0000_0100n).int64(0n).bytes(payload).build();
  const begin = new Wire().byte('B').int64(0x16_b374_d848n).int64(0n).int32(7).build();
  reader.read(xlog(begin));
  reader.read(new Wire().byte('k').int64(0x17_0000_0028n).int64(0n).byte(1).build());
  reader.read(new Wire().byte('k').int64(0x17_0000_0030n).int64(0n).byte(0).build());
  reader.read(new Wire().byte('r').int64(1n).build());
  reader.read(new Wire().byte('k').int64(1n).build());
  assert.deepEqual(seen, [
    { kind: 'message', value: { tag: 'begin', commitLsn: '16/B374D848', commitTime: PG_EPOCH_US, xid: 7 }, bytes: 25 + begin.length },
    { kind: 'keepalive', value: { walEnd: 0x17_0000_0028n, replyRequested: true } },
    { kind: 'keepalive', value: { walEnd: 0x17_0000_0030n, replyRequested: false } },
    { kind: 'malformed', value: 'the replication stream sent a CopyData message of 9 bytes starting with 0x72, neither XLogData nor a keepalive' },
    { kind: 'malformed', value: 'the replication stream sent a CopyData message of 9 bytes starting with 0x6b, neither XLogData nor a keepalive' },
  ]);
});

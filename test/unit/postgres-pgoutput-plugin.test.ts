// The pgoutput plugin hands tuples over as the raw text Postgres sent: no Date objects, no
// rounded int8, unchanged TOAST values as undefined. Fed hand-built wire messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PgoutputParser } from 'pg-logical-replication/dist/output-plugins/pgoutput/pgoutput-parser.js';
import { RawTextPgoutputParser, RawTextPgoutputPlugin } from '../../connectors/postgres/pgoutput-plugin.ts';

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

const relationMsg = new Wire()
  .byte('R')
  .int32(16400)
  .str('public')
  .str('events')
  .byte('d')
  .int16(4)
  .byte(1).str('id').int32(20).int32(-1)
  .byte(0).str('at').int32(1184).int32(-1)
  .byte(0).str('body').int32(25).int32(-1)
  .byte(0).str('amount').int32(1700).int32(-1)
  .build();

test('tuples arrive as raw text, NULL as null, unchanged TOAST as undefined', () => {
  const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] }, () => {});
  const rel = plugin.parse(relationMsg);
  assert.equal(rel.tag, 'relation');
  const ins = plugin.parse(
    new Wire().byte('I').int32(16400).byte('N').int16(4).text('9007199254740993').text('2024-05-06 07:08:09.123456+00').byte('n').text('0.1000000000000000000001').build(),
  );
  assert.equal(ins.tag, 'insert');
  assert.deepEqual({ ...(ins as { new: object }).new }, { id: '9007199254740993', at: '2024-05-06 07:08:09.123456+00', body: null, amount: '0.1000000000000000000001' });
  const upd = plugin.parse(new Wire().byte('U').int32(16400).byte('N').int16(4).text('1').text('2024-05-06 07:08:09+00').byte('u').text('2').build());
  assert.equal(upd.tag, 'update');
  const tuple = (upd as { new: Record<string, unknown> }).new;
  assert.ok('body' in tuple && tuple.body === undefined, 'unchanged TOAST column present as undefined');
});

test('an unreadable message becomes a parse-failure value instead of a throw inside the socket handler', () => {
  const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] }, () => {});
  const msg = plugin.parse(new Wire().byte('I').int32(99999).byte('N').int16(0).build()) as unknown as { tag: string; error: unknown };
  assert.equal(msg.tag, 'parse-failure');
  assert.ok(msg.error instanceof Error);
});

test('our tuple reader gives what the package\'s gives, on any tuple and on any truncation of it', () => {
  const ours = new RawTextPgoutputParser();
  const theirs = new PgoutputParser();
  assert.notEqual(
    (RawTextPgoutputParser.prototype as unknown as { readTuple: unknown }).readTuple,
    (PgoutputParser.prototype as unknown as { readTuple: unknown }).readTuple,
    'the faster reader is installed',
  );
  ours.parse(relationMsg);
  const rel = theirs.parse(relationMsg) as { columns: Array<{ parser: (x: unknown) => unknown }> };
  for (const c of rel.columns) c.parser = (x) => x;
  const attr = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }).map((s) => ({ kind: 't' as const, s })),
    fc.constant({ kind: 'n' as const, s: '' }),
    fc.constant({ kind: 'u' as const, s: '' }),
  );
  const read = (p: { parse(b: Buffer): unknown }, buf: Buffer) => {
    try {
      const m = p.parse(buf) as { tag: string; new?: object; old?: object };
      return { tag: m.tag, new: m.new && { ...m.new }, old: m.old && { ...m.old } };
    } catch (e) {
      return { threw: (e as Error).message };
    }
  };
  fc.assert(
    fc.property(fc.array(attr, { minLength: 4, maxLength: 4 }), fc.array(attr, { minLength: 4, maxLength: 4 }), fc.nat(), (before, after, cut) => {
      const w = new Wire().byte('U').int32(16400).byte('O').int16(4);
      for (const a of before) (a.kind === 't' ? w.text(a.s) : w.byte('n')); // an old tuple has no unchanged TOAST
      w.byte('N').int16(4);
      for (const a of after) (a.kind === 't' ? w.text(a.s) : w.byte(a.kind));
      const msg = w.build();
      assert.deepEqual(read(ours, msg), read(theirs, msg));
      const short = msg.subarray(0, cut % msg.length);
      assert.deepEqual(read(ours, short), read(theirs, short));
    }),
    { seed: 7, numRuns: 2000 },
  );
});

// Text → JSON conversion shared by the snapshot and the stream: exact where JS numbers are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OID, arrayConverter, asText, builtinConverter, parseArrayText } from '../../../connectors/postgres/pgoutput-values.ts';
import { TypeRegistry } from '../../../connectors/postgres/type-registry.ts';

const conv = (oid: number, text: string) => builtinConverter(oid)!(text);

test('integers: int2/int4/oid are numbers; int8 is a number only while exact', () => {
  assert.equal(conv(OID.int2, '-32768'), -32768);
  assert.equal(conv(OID.int4, '2147483647'), 2147483647);
  assert.equal(conv(OID.oid, '4294967295'), 4294967295);
  assert.equal(conv(OID.int8, '9007199254740991'), 9007199254740991);
  assert.equal(conv(OID.int8, '-9007199254740991'), -9007199254740991);
  assert.equal(conv(OID.int8, '9007199254740992'), '9007199254740992');
  assert.equal(conv(OID.int8, '9007199254740993'), '9007199254740993');
  assert.equal(conv(OID.int8, '-9223372036854775808'), '-9223372036854775808');
  assert.equal(conv(OID.int8, '0'), 0);
});

test('numeric and money keep their exact text; floats are numbers unless not finite', () => {
  assert.equal(conv(OID.numeric, '12345678901234567890.123456789'), '12345678901234567890.123456789');
  assert.equal(conv(OID.numeric, 'NaN'), 'NaN');
  assert.equal(conv(OID.money, '$1,234.56'), '$1,234.56');
  assert.equal(conv(OID.float8, '0.1'), 0.1);
  assert.equal(conv(OID.float8, '1.7976931348623157e+308'), 1.7976931348623157e308);
  assert.equal(conv(OID.float4, '-1.5'), -1.5);
  assert.equal(conv(OID.float8, 'NaN'), 'NaN');
  assert.equal(conv(OID.float8, 'Infinity'), 'Infinity');
  assert.equal(conv(OID.float8, '-Infinity'), '-Infinity');
});

test('bool, json, bytea, uuid, text', () => {
  assert.equal(conv(OID.bool, 't'), true);
  assert.equal(conv(OID.bool, 'f'), false);
  assert.deepEqual(conv(OID.jsonb, '{"a": {"b": [1, 2.5, null, "x"]}}'), { a: { b: [1, 2.5, null, 'x'] } });
  assert.deepEqual(conv(OID.json, '[1,{"k":true}]'), [1, { k: true }]);
  assert.equal(conv(OID.bytea, '\\xdeadbeef'), '\\xdeadbeef');
  assert.equal(conv(OID.uuid, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
  assert.equal(conv(OID.varchar, 'a b'), 'a b');
  assert.equal(builtinConverter(123456), undefined, 'unknown OIDs are left to the type registry');
});

test('timestamps keep microseconds, with T between date and time and an RFC 3339 offset (Z for UTC); no Date objects', () => {
  assert.equal(conv(OID.timestamptz, '2024-05-06 07:08:09.123456+00'), '2024-05-06T07:08:09.123456Z');
  assert.equal(conv(OID.timestamptz, '2024-05-06 07:08:09+00'), '2024-05-06T07:08:09Z');
  assert.equal(conv(OID.timestamptz, '2024-05-06 07:08:09.123456+05:30'), '2024-05-06T07:08:09.123456+05:30');
  assert.equal(conv(OID.timestamptz, '2024-05-06 07:08:09-03'), '2024-05-06T07:08:09-03:00');
  assert.equal(conv(OID.timestamp, '2024-05-06 07:08:09.000001'), '2024-05-06T07:08:09.000001');
  assert.equal(conv(OID.timestamp, 'infinity'), 'infinity');
  assert.equal(conv(OID.timestamptz, '-infinity'), '-infinity');
  assert.equal(conv(OID.date, 'infinity'), 'infinity');
  assert.equal(conv(OID.timestamptz, '0044-03-15 12:00:00+00 BC'), '-000043-03-15T12:00:00Z', '44 BC is the astronomical year -43');
  assert.equal(conv(OID.timestamp, '0001-01-01 00:00:00 BC'), '0000-01-01T00:00:00', '1 BC is year 0');
  assert.equal(conv(OID.timestamptz, '10000-01-01 00:00:00.5+00'), '+010000-01-01T00:00:00.5Z');
  assert.equal(conv(OID.date, '2024-05-06'), '2024-05-06');
  assert.equal(conv(OID.date, '0044-03-15 BC'), '-000043-03-15');
  assert.equal(conv(OID.date, '12345-06-07'), '+012345-06-07');
  assert.equal(conv(OID.time, '07:08:09.123456'), '07:08:09.123456');
  assert.equal(conv(OID.timetz, '07:08:09.5+00'), '07:08:09.5Z');
  assert.equal(conv(OID.timetz, '07:08:09+05:30'), '07:08:09+05:30');
  assert.equal(conv(OID.timetz, '07:08:09-08'), '07:08:09-08:00');
});

/** The instant `text` names, to the millisecond Date keeps, or NaN when Date cannot parse it. */
const instant = (text: unknown) => new Date(text as string).getTime();

test('every date and time value is one JavaScript parses: new Date(value) is the instant it names', () => {
  // timestamptz: an instant. Each case: Postgres's text (TimeZone=UTC), the instant.
  const instants: [string, string][] = [
    ['2024-05-06 07:08:09.123456+00', '2024-05-06T07:08:09.123Z'],
    ['2024-05-06 07:08:09+00', '2024-05-06T07:08:09.000Z'],
    ['2024-05-06 07:08:09.5+05:30', '2024-05-06T01:38:09.500Z'],
    ['1999-12-31 23:00:00-05', '2000-01-01T04:00:00.000Z'],
    ['1969-12-31 23:59:59.999999+00', '1969-12-31T23:59:59.999Z'],
    ['0044-03-15 12:00:00+00 BC', '-000043-03-15T12:00:00.000Z'],
    ['10000-01-01 00:00:00+00', '+010000-01-01T00:00:00.000Z'],
  ];
  for (const [text, iso] of instants) {
    const v = conv(OID.timestamptz, text);
    assert.equal(instant(v), Date.parse(iso), `timestamptz ${text} → ${String(v)}`);
    assert.equal(new Date(v as string).toISOString(), iso);
  }
  // timestamp: a wall-clock time without a zone; Date reads it as local time, field by field.
  for (const [text, fields] of [
    ['2024-05-06 07:08:09.123456', [2024, 4, 6, 7, 8, 9, 123]],
    ['1900-02-28 00:00:00', [1900, 1, 28, 0, 0, 0, 0]],
  ] as const) {
    const v = conv(OID.timestamp, text) as string;
    const d = new Date(v);
    assert.deepEqual([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()], fields, `timestamp ${text} → ${v}`);
  }
  // date: Date reads a date alone as midnight UTC of that day.
  for (const [text, iso] of [
    ['2024-05-06', '2024-05-06T00:00:00.000Z'],
    ['0044-03-15 BC', '-000043-03-15T00:00:00.000Z'],
    ['12345-06-07', '+012345-06-07T00:00:00.000Z'],
  ]) {
    assert.equal(new Date(conv(OID.date, text) as string).toISOString(), iso, `date ${text}`);
  }
  // time and timetz: a time of day; on a date they parse as one.
  assert.equal(new Date(`2024-05-06T${conv(OID.time, '07:08:09.123456') as string}Z`).toISOString(), '2024-05-06T07:08:09.123Z');
  assert.equal(new Date(`2024-05-06T${conv(OID.timetz, '07:08:09.5+00') as string}`).toISOString(), '2024-05-06T07:08:09.500Z');
  assert.equal(new Date(`2024-05-06T${conv(OID.timetz, '07:08:09-08') as string}`).toISOString(), '2024-05-06T15:08:09.000Z');
  // Arrays convert each element alike.
  assert.deepEqual((conv(1185, '{"2024-05-06 07:08:09.123456+00",NULL}') as (string | null)[]).map((v) => v && new Date(v).toISOString()), ['2024-05-06T07:08:09.123Z', null]);
  // The forms Date cannot hold stay Postgres's text, and are the only ones it does not parse.
  assert.ok(Number.isNaN(instant(conv(OID.timestamptz, 'infinity'))));
});

test('arrays: one dimension becomes a JSON array of converted elements', () => {
  assert.deepEqual(conv(1007, '{1,2,-3}'), [1, 2, -3]);
  assert.deepEqual(conv(1007, '{}'), []);
  assert.deepEqual(conv(1007, '{1,NULL,3}'), [1, null, 3]);
  assert.deepEqual(conv(1009, '{a,"NULL",NULL,"x,y","q\\"uote","back\\\\slash",""}'), ['a', 'NULL', null, 'x,y', 'q"uote', 'back\\slash', '']);
  assert.deepEqual(conv(1231, '{12345678901234567890.123456789,1}'), ['12345678901234567890.123456789', '1']);
  assert.deepEqual(conv(1016, '{1,9007199254740993}'), [1, '9007199254740993']);
  assert.deepEqual(conv(1000, '{t,f}'), [true, false]);
  assert.deepEqual(conv(1185, '{"2024-05-06 07:08:09.123456+00"}'), ['2024-05-06T07:08:09.123456Z']);
  assert.deepEqual(conv(3807, '{"{\\"a\\": 1}","[1, 2]"}'), [{ a: 1 }, [1, 2]]);
});

test('arrays the simple parser does not take stay text', () => {
  assert.equal(conv(1007, '{{1,2},{3,4}}'), '{{1,2},{3,4}}');
  assert.equal(conv(1007, '[0:1]={1,2}'), '[0:1]={1,2}');
  assert.equal(parseArrayText('{"unterminated}'), null);
  assert.equal(parseArrayText('{a,,b}'), null);
});

/** Serializes like Postgres's array_out for text elements. */
function pgArray(items: (string | null)[]): string {
  return `{${items
    .map((s) => {
      if (s === null) return 'NULL';
      if (s === '' || /[{}",\\\s]/.test(s) || s.toUpperCase() === 'NULL') return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
      return s;
    })
    .join(',')}}`;
}

test('array parser round-trips any one-dimensional text array (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.option(fc.string({ unit: 'grapheme' }), { nil: null })), (items) => {
      assert.deepEqual(parseArrayText(pgArray(items)), items);
    }),
    { numRuns: 2000 },
  );
});

test('type registry: domains convert like their base type, arrays of anything become arrays, the rest text', async () => {
  const catalog = new Map([
    [90001, { oid: 90001, typtype: 'd', typbasetype: 23, typelem: 0, typcategory: 'N', typdelim: ',' }], // domain over int4
    [90002, { oid: 90002, typtype: 'b', typbasetype: 0, typelem: 90001, typcategory: 'A', typdelim: ',' }], // array of that domain
    [90003, { oid: 90003, typtype: 'e', typbasetype: 0, typelem: 0, typcategory: 'E', typdelim: ',' }], // enum
    [90004, { oid: 90004, typtype: 'b', typbasetype: 0, typelem: 90003, typcategory: 'A', typdelim: ',' }], // enum[]
    [90005, { oid: 90005, typtype: 'd', typbasetype: 90001, typelem: 0, typcategory: 'N', typdelim: ',' }], // domain over domain
    [90006, { oid: 90006, typtype: 'b', typbasetype: 0, typelem: 603, typcategory: 'A', typdelim: ';' }], // box[]: ';' delimiter
  ]);
  const queries: number[][] = [];
  const client = {
    query: async (_sql: string, params: unknown[]) => {
      const oids = params[0] as number[];
      queries.push(oids);
      return { rows: oids.flatMap((o) => (catalog.has(o) ? [catalog.get(o)] : [])) };
    },
  };
  const reg = new TypeRegistry();
  assert.deepEqual(reg.unknown([23, 90001, 90002]), [90001, 90002]);
  await reg.resolve(client as never, [90002, 90003, 90004, 90005, 90006, 90099]);
  assert.deepEqual(reg.converter(90002)!('{1,NULL}'), [1, null]);
  assert.equal(reg.converter(90001)!('42'), 42, 'the domain itself was resolved on the way');
  assert.equal(reg.converter(90005)!('7'), 7);
  assert.equal(reg.converter(90003)!('happy'), 'happy');
  assert.deepEqual(reg.converter(90004)!('{happy,sad}'), ['happy', 'sad']);
  assert.equal(reg.converter(90006)!('{(1,1),(0,0);(2,2),(1,1)}'), '{(1,1),(0,0);(2,2),(1,1)}');
  assert.equal(reg.converter(90099), asText, 'a type the catalog does not know reads as text');
  assert.deepEqual(reg.unknown([90001, 90002, 90003, 90099]), []);
  const before = queries.length;
  await reg.resolve(client as never, [90002]);
  assert.equal(queries.length, before, 'resolved types are not looked up again');
  assert.deepEqual(arrayConverter(asText)('{a}'), ['a']);
});

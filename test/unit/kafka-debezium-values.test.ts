// Debezium's encodings → the Postgres connector's values (connectors/kafka/debezium-values.ts), on
// the edges the fixtures of real Debezium output (test/integration/kafka-debezium-values.test.ts)
// do not reach: TOAST placeholders, keys, bad values, settings, records without a schema.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { rowConverter } from '../../connectors/kafka/debezium-values.ts';
import { RecordMapper } from '../../connectors/kafka/record-mapper.ts';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject, JsonValue } from '../../core/json.ts';

const field = (f: string, type: string, name?: string, parameters?: JsonObject): JsonObject => ({ type, optional: true, field: f, ...(name ? { name } : {}), ...(parameters ? { parameters } : {}) });
const SCHEMA = {
  type: 'struct',
  fields: [
    field('id', 'bytes', 'org.apache.kafka.connect.data.Decimal', { scale: '0' }),
    field('amount', 'bytes', 'org.apache.kafka.connect.data.Decimal', { scale: '2' }),
    field('doc', 'string', 'io.debezium.data.Json'),
    field('blob', 'bytes'),
    field('ts', 'int64', 'io.debezium.time.MicroTimestamp'),
    field('ms', 'int64', 'org.apache.kafka.connect.data.Timestamp'),
    field('day', 'int32', 'io.debezium.time.Date'),
    field('t', 'int64', 'io.debezium.time.MicroTime'),
    field('note', 'string'),
    { type: 'array', optional: true, field: 'days', items: { type: 'int32', optional: true, name: 'io.debezium.time.Date' } },
  ],
};

test('values convert by logical type; nulls, unnamed fields and fields the schema does not name pass as they are', () => {
  const convert = rowConverter(SCHEMA)!;
  assert.deepEqual(
    convert({ id: 'AJg=', amount: '/w==', doc: '{"a":[1]}', blob: '3q2+7w==', ts: -1, ms: 1767259800123, day: -1, t: 86400000000, note: 'x', days: [0, null], extra: 1 }),
    { id: '152', amount: '-0.01', doc: { a: [1] }, blob: '\\xdeadbeef', ts: '1969-12-31T23:59:59.999999', ms: '2026-01-01T09:30:00.123', day: '1969-12-31', t: '24:00:00', note: 'x', days: ['1970-01-01', null], extra: 1 },
  );
  assert.deepEqual(convert({ id: null, ts: '9223372036854775' }), { id: null, ts: '2262-04-11T23:47:16.854775' }, 'µs beyond 2^53 arrive as exact strings');
  assert.equal(rowConverter({ type: 'struct', fields: [field('n', 'int64'), field('s', 'string')] }), null, 'nothing to convert: no work per record');
});

test('unchanged TOASTed columns keep the placeholder, in text and in bytes columns, so they keep their cached value', () => {
  const convert = rowConverter(SCHEMA)!;
  const placeholder = '__debezium_unavailable_value';
  assert.deepEqual(convert({ doc: placeholder, blob: Buffer.from(placeholder).toString('base64') }), { doc: placeholder, blob: placeholder });
  const m = new RecordMapper({ topic: 't', format: 'debezium', path: 't/{key.id}' }, 0, { maxValueBytes: 1 << 20 });
  const value = { schema: { type: 'struct', fields: [{ ...field('after', 'struct'), fields: SCHEMA.fields }] }, payload: { op: 'u', before: null, after: { id: 'AA==', doc: placeholder, note: 'new' } } };
  const r = m.map('t', 0, { offset: '1', key: Buffer.from('{"id":0}'), value: Buffer.from(JSON.stringify(value)), headers: {} });
  assert.deepEqual(r, { kind: 'updates', updates: [{ path: 't/0', source: 'kafka:t', value: { id: '0', note: 'new' }, keep: ['doc'] }] });
});

test('a key is converted with its schema: a numeric primary key names the path the direct path gives', () => {
  const m = new RecordMapper({ topic: 't', format: 'debezium', path: 't/{key.id}' }, 0, { maxValueBytes: 1 << 20 });
  const key = { schema: { type: 'struct', fields: [field('id', 'bytes', 'org.apache.kafka.connect.data.Decimal', { scale: '2' })] }, payload: { id: 'BNI=' } };
  const r = m.map('t', 0, { offset: '1', key: Buffer.from(JSON.stringify(key)), value: Buffer.from('{"op":"c","before":null,"after":{"x":1}}'), headers: {} });
  assert.equal(r.kind === 'updates' && r.updates[0].path, 't/12.34');
  const raw = new RecordMapper({ topic: 't', format: 'debezium', path: 't/{key.id}', values: 'raw' }, 0, { maxValueBytes: 1 << 20 });
  const r2 = raw.map('t', 0, { offset: '1', key: Buffer.from(JSON.stringify(key)), value: Buffer.from('{"op":"c","before":null,"after":{"x":1}}'), headers: {} });
  assert.equal(r2.kind === 'updates' && r2.updates[0].path, 't/BNI%3D', 'raw: Debezium’s own encoding');
});

test('a value that does not match its schema is a bad record saying which field', () => {
  const m = new RecordMapper({ topic: 't', format: 'debezium', path: 't/{value.note}' }, 0, { maxValueBytes: 1 << 20 });
  const value = { schema: { type: 'struct', fields: [{ ...field('after', 'struct'), fields: SCHEMA.fields }] }, payload: { op: 'c', before: null, after: { note: 'n', doc: '{not json' } } };
  const r = m.map('t', 0, { offset: '1', key: null, value: Buffer.from(JSON.stringify(value)), headers: {} });
  assert.equal(r.kind, 'bad');
  assert.equal(r.kind === 'bad' && r.reason, 'invalid-envelope');
  assert.match(r.kind === 'bad' ? r.detail : '', /^a value does not match its Connect schema: field "doc": /);
});

test('values: only on format debezium, only postgres or raw', () => {
  assert.throws(() => new RecordMapper({ topic: 't', format: 'json', path: 't/{key}', values: 'raw' }, 3, { maxValueBytes: 1 }), (e: unknown) => e instanceof ConfigError && /kafka\.topics\.3\.values/.test(e.message) && /format: debezium only/.test(e.message));
  assert.throws(() => new RecordMapper({ topic: 't', format: 'debezium', path: 't/{key}', values: 'pg' as never }, 0, { maxValueBytes: 1 }), /must be postgres or raw/);
});

test('dates and times from real Debezium 3.6.1 records are RFC 3339 text JavaScript parses, each the instant the row holds', () => {
  const fixtures = new URL('../fixtures/debezium-3.6.1.Final/records.jsonl', import.meta.url);
  const m = new RecordMapper({ topic: 'shop.public.all_types', format: 'debezium', path: 't/{key.id}' }, 0, { maxValueBytes: 1 << 20 });
  const rows = new Map<string, JsonObject>();
  readFileSync(fixtures, 'utf8').trim().split('\n').forEach((line, i) => {
    const r = JSON.parse(line) as { key: string; value: string };
    const mapped = m.map('shop.public.all_types', 0, { offset: String(i), key: Buffer.from(r.key), value: Buffer.from(r.value), headers: {} });
    assert.equal(mapped.kind, 'updates', line.slice(0, 80));
    if (mapped.kind === 'updates') for (const u of mapped.updates) rows.set(u.path.slice(2), u.value as JsonObject);
  });
  // The rows of rows-snapshot.sql and rows-stream.sql: timestamptz, an instant.
  const instants: Record<string, string> = {
    '1': '2026-01-01T09:30:00.123Z',
    '1234567890123456789': '2000-01-01T04:00:00.000Z', // '1999-12-31 23:00:00-05'
    '4': '2026-06-30T10:00:00.500Z', // '2026-06-30 12:00:00.5+02'
    '-5': '2000-01-01T00:00:00.000Z',
  };
  for (const [id, iso] of Object.entries(instants)) {
    const v = rows.get(id)!.c_timestamptz as string;
    assert.match(v, /Z$/, `c_timestamptz of ${id}: ${v} ends in Z, like the direct path`);
    assert.equal(new Date(v).toISOString(), iso, `c_timestamptz of ${id}: ${v}`);
  }
  assert.equal(rows.get('1')!.c_timestamptz, '2026-01-01T09:30:00.123456Z', 'microseconds kept');
  // timestamp: local wall-clock time, no offset; date: a day; time/timetz: a time of day.
  const local = (v: JsonValue) => {
    const d = new Date(v as string);
    return [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  };
  assert.deepEqual(local(rows.get('1')!.c_timestamp), [2026, 1, 1, 9, 30, 0, 123]);
  assert.deepEqual(local(rows.get('4')!.c_timestamp), [2262, 4, 11, 23, 47, 16, 854]);
  assert.equal(new Date(rows.get('1')!.c_date as string).toISOString(), '2026-08-14T00:00:00.000Z');
  assert.equal(new Date(rows.get('4')!.c_date as string).toISOString(), '0001-01-01T00:00:00.000Z');
  assert.equal(new Date(`2026-01-01T${rows.get('1')!.c_time as string}Z`).toISOString(), '2026-01-01T09:30:00.123Z');
  assert.equal(rows.get('4')!.c_timetz, '12:00:00.5Z');
  assert.equal(new Date(`2026-01-01T${rows.get('4')!.c_timetz as string}`).toISOString(), '2026-01-01T12:00:00.500Z');
});

test('BC and five-digit years become the expanded years Date parses, as on the direct path', () => {
  const convert = rowConverter({ type: 'struct', fields: [field('d', 'int32', 'io.debezium.time.Date'), field('z', 'string', 'io.debezium.time.ZonedTimestamp'), field('ts', 'int64', 'io.debezium.time.MicroTimestamp')] })!;
  const bc = convert({ d: -735_160, z: '-0043-03-15T12:00:00Z', ts: '-62135596800000001' });
  assert.deepEqual(bc, { d: '-000043-03-15', z: '-000043-03-15T12:00:00Z', ts: '0000-12-31T23:59:59.999999' });
  assert.equal(new Date(bc.z as string).toISOString(), '-000043-03-15T12:00:00.000Z');
  const far = convert({ z: '+10000-01-01T00:00:00.500000Z' });
  assert.equal(far.z, '+010000-01-01T00:00:00.5Z');
  assert.equal(new Date(far.z as string).toISOString(), '+010000-01-01T00:00:00.500Z');
});

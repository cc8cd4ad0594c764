// Debezium's encodings → the Postgres connector's values (connectors/kafka/debezium-values.ts), on
// the edges the fixtures of real Debezium output (test/integration/kafka-debezium-values.test.ts)
// do not reach: TOAST placeholders, keys, bad values, settings, records without a schema.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowConverter } from '../../connectors/kafka/debezium-values.ts';
import { RecordMapper } from '../../connectors/kafka/record-mapper.ts';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';

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

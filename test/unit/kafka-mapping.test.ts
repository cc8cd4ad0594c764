// Mapping Kafka records onto topic updates, without a broker: path templates over key, value,
// headers, topic and partition; include/exclude; tenants; tombstones; Debezium envelopes with and
// without the JsonConverter schema wrapper; bad records; configuration errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import schema from '../../schemas/config.schema.json' with { type: 'json' };
import { DEAD_LETTER_HEADERS, deadLetterMessage } from '../../connectors/kafka/dead-letter.ts';
import type { KafkaMessage } from '../../connectors/kafka/kafka-client.ts';
import { KAFKA_DEFAULTS } from '../../connectors/kafka/kafka-options.ts';
import { type MappedRecord, RecordMapper, TopicMappings } from '../../connectors/kafka/record-mapper.ts';
import type { KafkaTopicMapping } from '../../services/config/config.ts';
import { parseConfig } from '../../services/config/config.ts';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';

const MiB = 1 << 20;

function mapper(spec: Partial<KafkaTopicMapping> & { path: string }, maxValueBytes = MiB): RecordMapper {
  return new RecordMapper({ topic: 'prices', format: 'json', ...spec }, 0, { maxValueBytes });
}

function msg(value: unknown, opts: { key?: string | null; headers?: KafkaMessage['headers']; raw?: boolean } = {}): KafkaMessage {
  const v = value === null ? null : Buffer.from(opts.raw ? String(value) : JSON.stringify(value));
  return { offset: '42', key: opts.key === undefined ? Buffer.from('k1') : opts.key === null ? null : Buffer.from(opts.key), value: v, headers: opts.headers ?? {} };
}

function updates(r: MappedRecord) {
  assert.equal(r.kind, 'updates', `expected updates, got ${JSON.stringify(r)}`);
  return (r as Extract<MappedRecord, { kind: 'updates' }>).updates;
}

function badReason(r: MappedRecord): string {
  assert.equal(r.kind, 'bad', `expected a bad record, got ${JSON.stringify(r)}`);
  return (r as Extract<MappedRecord, { kind: 'bad' }>).reason;
}

// A Debezium change event as the Postgres connector writes it with the JsonConverter,
// decimal.handling.mode=string and time.precision.mode=connect.
function debezium(op: string, before: JsonObject | null, after: JsonObject | null, withSchema: boolean): JsonObject {
  const ts = 1_767_225_600_000;
  const payload: JsonObject = {
    before,
    after,
    source: {
      version: '3.1.2.Final', connector: 'postgresql', name: 'shop', ts_ms: ts, snapshot: op === 'r' ? 'true' : 'false', db: 'shop',
      sequence: '[null,"24023224"]', ts_us: ts * 1000, ts_ns: ts * 1_000_000, schema: 'public', table: 'prices', txId: 771, lsn: 24023224, xmin: null,
    },
    transaction: null,
    op,
    ts_ms: ts + 5,
    ts_us: (ts + 5) * 1000,
    ts_ns: (ts + 5) * 1_000_000,
  };
  if (!withSchema) return payload;
  // With its schema, a ZonedTimestamp is written as Debezium writes it (UTC, six fraction digits,
  // `Z`); tidewire drops the trailing zeros, as the direct path's text has none (debezium-values.ts).
  for (const image of ['before', 'after']) {
    const r = payload[image];
    if (r && typeof r === 'object' && !Array.isArray(r) && typeof r.updated_at === 'string') payload[image] = { ...r, updated_at: r.updated_at.replace(/(\.\d+)?Z$/, (_, f?: string) => `${(f ?? '.').padEnd(7, '0')}Z`) };
  }
  const row = (name: string): JsonObject => ({
    type: 'struct', optional: true, name: 'shop.public.prices.Value', field: name,
    fields: [
      { type: 'int64', optional: false, field: 'id' },
      { type: 'string', optional: false, field: 'venue' },
      { type: 'string', optional: true, field: 'price' },
      { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1, field: 'updated_at' },
    ],
  });
  const envelope: JsonObject = {
      type: 'struct', optional: false, name: 'shop.public.prices.Envelope', version: 2,
      fields: [
        row('before'), row('after'),
        { type: 'struct', optional: false, name: 'io.debezium.connector.postgresql.Source', field: 'source', fields: [] },
        { type: 'struct', optional: true, name: 'event.block', version: 1, field: 'transaction', fields: [] },
        { type: 'string', optional: false, field: 'op' },
        { type: 'int64', optional: true, field: 'ts_ms' },
        { type: 'int64', optional: true, field: 'ts_us' },
        { type: 'int64', optional: true, field: 'ts_ns' },
      ],
  };
  return { schema: envelope, payload };
}

const row = { id: 7, venue: 'XNYS', price: '101.25', updated_at: '2026-01-01T00:00:00.123456Z' };

test('templates read the key, JSON key fields, nested value fields, headers, topic and partition', () => {
  const m = mapper({ path: 'p/{topic}/{partition}/{headers.region}/{value.venue}/{value.quote.ccy}/{key}' });
  const [u] = updates(m.map('prices', 3, msg({ venue: 'XNYS', quote: { ccy: 'USD' } }, { key: 'AAPL', headers: { region: Buffer.from('eu') } })));
  assert.deepEqual(u, { path: 'p/prices/3/eu/XNYS/USD/AAPL', source: 'kafka:prices', value: { venue: 'XNYS', quote: { ccy: 'USD' } } });

  const j = mapper({ path: 'orders/{key.customer}/{key.id}' });
  assert.equal(updates(j.map('prices', 0, msg({ a: 1 }, { key: '{"customer":"c/1","id":9}' })))[0].path, 'orders/c%2F1/9', 'a / in data is encoded');

  const h = mapper({ path: 'x/{headers.region}' });
  assert.equal(updates(h.map('prices', 0, msg({}, { headers: { region: [Buffer.from('a'), 'b'] } })))[0].path, 'x/b', 'the last of repeated headers');
});

test('include and exclude pick top-level value fields; tenants are fixed or read from the record', () => {
  const inc = mapper({ path: 'p/{key}', include: ['a', 'c', 'missing'], tenant: 'acme' });
  assert.deepEqual(updates(inc.map('prices', 0, msg({ a: 1, b: 2, c: { d: 3 } })))[0], { path: 'p/k1', source: 'kafka:prices', tenant: 'acme', value: { a: 1, c: { d: 3 } } });
  const exc = mapper({ path: 'p/{key}', exclude: ['secret'], tenantField: 'value.tenant_id' });
  assert.deepEqual(updates(exc.map('prices', 0, msg({ tenant_id: 12, secret: 'x', n: 1 })))[0], { path: 'p/k1', source: 'kafka:prices', tenant: '12', value: { tenant_id: 12, n: 1 } });
  const hdr = mapper({ path: 'p/{key}', tenantField: 'headers.tenant' });
  assert.equal(updates(hdr.map('prices', 0, msg({}, { headers: { tenant: 'globex' } })))[0].tenant, 'globex');
  assert.equal(badReason(hdr.map('prices', 0, msg({}))), 'missing-field', 'a record without its tenant is bad, not given to the default tenant');
});

test('JSON tombstones remove the topic when the path needs no value field, and are counted as ignored otherwise', () => {
  assert.deepEqual(updates(mapper({ path: 'p/{topic}/{key}' }).map('prices', 0, msg(null))), [{ path: 'p/prices/k1', source: 'kafka:prices', value: null }]);
  assert.deepEqual(mapper({ path: 'p/{value.venue}/{key}' }).map('prices', 0, msg(null)), { kind: 'ignored', why: 'unmappable-tombstone' });
  assert.equal(badReason(mapper({ path: 'p/{key}' }).map('prices', 0, msg(null, { key: null }))), 'missing-field', 'a tombstone without a key names nothing');
});

test('bad records: invalid JSON, not an object, a missing field, too large, a key that is not JSON, a path too long', () => {
  const m = mapper({ path: 'p/{value.venue}/{key}' }, 64);
  assert.equal(badReason(m.map('prices', 0, msg('{"venue":', { raw: true }))), 'invalid-json');
  assert.equal(badReason(m.map('prices', 0, msg([1, 2]))), 'not-an-object');
  assert.equal(badReason(m.map('prices', 0, msg(5))), 'not-an-object');
  assert.equal(badReason(m.map('prices', 0, msg({ other: 1 }))), 'missing-field');
  assert.equal(badReason(m.map('prices', 0, msg({ venue: 'v' }, { key: null }))), 'missing-field', 'a null key has no {key}');
  const exactly = { venue: 'v', pad: 'x'.repeat(64 - JSON.stringify({ venue: 'v', pad: '' }).length) };
  assert.equal(JSON.stringify(exactly).length, 64);
  assert.equal(m.map('prices', 0, msg(exactly)).kind, 'updates', 'a value of exactly maxValueBytes is fine');
  assert.equal(badReason(m.map('prices', 0, msg({ ...exactly, pad: `${exactly.pad}x` }))), 'too-large');
  assert.equal(badReason(mapper({ path: 'p/{key.id}' }).map('prices', 0, msg({}, { key: 'not json' }))), 'invalid-json');
  assert.equal(badReason(mapper({ path: 'p/{value.s}' }).map('prices', 0, msg({ s: 'y'.repeat(2000) }))), 'invalid-path');
});

test('Debezium c/r/u upsert `after` exactly as the same row in JSON format, with and without the schema wrapper', () => {
  const path = 'prices/{value.venue}/{key.id}';
  const json = mapper({ path });
  const dbz = mapper({ path, format: 'debezium' });
  const expected = updates(json.map('prices', 0, msg(row, { key: '{"id":7}' })));
  for (const withSchema of [false, true]) {
    const key = withSchema ? JSON.stringify({ schema: { type: 'struct', name: 'shop.public.prices.Key', optional: false, fields: [{ type: 'int64', optional: false, field: 'id' }] }, payload: { id: 7 } }) : '{"id":7}';
    for (const op of ['c', 'r', 'u']) {
      assert.deepEqual(updates(dbz.map('prices', 0, msg(debezium(op, null, row, withSchema), { key }))), expected, `op ${op}, schema ${withSchema}`);
    }
  }
});

test('property: any row maps to the same update from a JSON value and from both Debezium envelope shapes', () => {
  const path = 'r/{value.id}';
  const value = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.dictionary(fc.string(), fc.string()));
  fc.assert(
    fc.property(fc.dictionary(fc.string().filter((k) => k !== '__proto__'), value), fc.oneof(fc.string(), fc.integer()), (fields, id) => {
      // Fresh mappers: a mapper remembers each key's last path (to remove it when the key moves).
      const json = mapper({ path, exclude: ['hidden'] });
      const dbz = mapper({ path, exclude: ['hidden'], format: 'debezium' });
      const r = { ...fields, id } as JsonObject;
      const expected = json.map('prices', 0, msg(r));
      assert.deepEqual(dbz.map('prices', 0, msg(debezium('c', null, r, false))), expected);
      assert.deepEqual(dbz.map('prices', 0, msg(debezium('u', null, r, true))), expected);
    }),
  );
});

test('Debezium deletes remove the path of `before`; its tombstones add nothing; a changed path moves the topic', () => {
  const dbz = mapper({ path: 'prices/{value.venue}/{value.id}', format: 'debezium' });
  for (const withSchema of [false, true]) {
    assert.deepEqual(updates(dbz.map('prices', 0, msg(debezium('d', row, null, withSchema)))), [{ path: 'prices/XNYS/7', source: 'kafka:prices', value: null }]);
  }
  assert.deepEqual(dbz.map('prices', 0, msg(null)), { kind: 'ignored', why: 'tombstone' });
  // With a key-only path the tombstone renders, and its removal is idempotent downstream.
  const byKey = mapper({ path: 'prices/{key.id}', format: 'debezium' });
  assert.deepEqual(updates(byKey.map('prices', 0, msg(null, { key: '{"id":7}' }))), [{ path: 'prices/7', source: 'kafka:prices', value: null }]);
  // REPLICA IDENTITY FULL update that changes a path column: the old topic goes, the new one comes.
  const moved = { ...row, venue: 'XLON' };
  assert.deepEqual(updates(dbz.map('prices', 0, msg(debezium('u', row, moved, false)))), [
    { path: 'prices/XNYS/7', source: 'kafka:prices', value: null },
    { path: 'prices/XLON/7', source: 'kafka:prices', value: moved },
  ]);
  assert.equal(updates(dbz.map('prices', 0, msg(debezium('u', row, { ...row, price: '1' }, false)))).length, 1, 'same path: no removal');
  // A primary-key change arrives as a delete of the old key and a create of the new one.
  assert.equal(updates(dbz.map('prices', 0, msg(debezium('d', row, null, true))))[0].value, null);
  assert.equal(updates(dbz.map('prices', 0, msg(debezium('c', null, { ...row, id: 8 }, true))))[0].path, 'prices/XNYS/8');
});

test('Debezium truncate, messages, unchanged TOAST values and malformed envelopes', () => {
  const dbz = mapper({ path: 'prices/{value.id}', format: 'debezium' });
  assert.deepEqual(dbz.map('prices', 0, msg(debezium('t', null, null, true))), { kind: 'truncate', source: 'kafka:prices' });
  assert.deepEqual(dbz.map('prices', 0, msg(debezium('m', null, null, false))), { kind: 'ignored', why: 'message' });
  const [u] = updates(dbz.map('prices', 0, msg(debezium('u', null, { id: 7, doc: '__debezium_unavailable_value', n: 2 }, false))));
  assert.deepEqual(u, { path: 'prices/7', source: 'kafka:prices', value: { id: 7, n: 2 }, keep: ['doc'] });
  assert.equal(badReason(dbz.map('prices', 0, msg(debezium('x', null, row, false)))), 'invalid-envelope');
  assert.equal(badReason(dbz.map('prices', 0, msg(debezium('c', null, null, false)))), 'invalid-envelope');
  assert.equal(badReason(dbz.map('prices', 0, msg(row))), 'invalid-envelope', 'a plain row on a Debezium mapping');
  assert.equal(badReason(dbz.map('prices', 0, msg(debezium('d', null, null, false)))), 'missing-field', 'a delete without before cannot name the path');
});

test('the dead-letter copy keeps key, value and headers and says what went wrong and where', () => {
  const m: KafkaMessage = { offset: '17', key: Buffer.from('k'), value: Buffer.from('{bad'), headers: { trace: 'abc' } };
  const d = deadLetterMessage({ topic: 'prices', partition: 2, message: m, reason: 'invalid-json', detail: 'the value is not JSON' });
  assert.equal(d.key, m.key);
  assert.equal(d.value, m.value);
  assert.deepEqual(d.headers, {
    trace: 'abc',
    [DEAD_LETTER_HEADERS.error]: 'invalid-json: the value is not JSON',
    [DEAD_LETTER_HEADERS.topic]: 'prices',
    [DEAD_LETTER_HEADERS.partition]: '2',
    [DEAD_LETTER_HEADERS.offset]: '17',
  });
});

test('mappings match by name or pattern, first match wins', () => {
  const ms = new TopicMappings([
    new RecordMapper({ topic: 'prices.eu', format: 'json', path: 'eu/{key}' }, 0, { maxValueBytes: MiB }),
    new RecordMapper({ pattern: '^prices\\.', format: 'json', path: 'any/{topic}/{key}' }, 1, { maxValueBytes: MiB }),
  ]);
  assert.equal(updates(ms.forTopic('prices.eu')!.map('prices.eu', 0, msg({})))[0].path, 'eu/k1');
  assert.equal(updates(ms.forTopic('prices.us')!.map('prices.us', 0, msg({})))[0].path, 'any/prices.us/k1');
  assert.equal(ms.forTopic('orders'), undefined);
});

test('configuration errors name the setting', () => {
  const bad = (spec: Record<string, unknown>, key: string, message: RegExp) =>
    assert.throws(() => new RecordMapper({ format: 'json', path: 'p/{key}', ...spec } as KafkaTopicMapping, 3, { maxValueBytes: MiB }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.key, key);
      assert.match(e.message, message);
      return true;
    });
  bad({ topic: 'a', pattern: 'b' }, 'kafka.topics.3', /exactly one of topic and pattern/);
  bad({}, 'kafka.topics.3', /exactly one of topic and pattern/);
  bad({ pattern: '(' }, 'kafka.topics.3.pattern', /regular expression/);
  bad({ topic: 'a', path: 'p/{id}' }, 'kafka.topics.3.path', /must start with key, value, headers, topic or partition/);
  bad({ topic: 'a', path: 'p/{value}' }, 'kafka.topics.3.path', /name a field of the value/);
  bad({ topic: 'a', path: 'p/{headers}' }, 'kafka.topics.3.path', /name one header/);
  bad({ topic: 'a', path: 'p/{topic.x}' }, 'kafka.topics.3.path', /no fields/);
  bad({ topic: 'a', path: 'p/x{key}' }, 'kafka.topics.3.path', /whole segment/);
  bad({ topic: 'a', tenant: 't', tenantField: 'value.t' }, 'kafka.topics.3.tenantField', /not both/);
  bad({ topic: 'a', tenantField: 'tenant' }, 'kafka.topics.3.tenantField', /must start with/);
  bad({ topic: 'a', format: 'avro' }, 'kafka.topics.3.format', /json or debezium/);
});

test('the schema fills in the connector defaults; environment overrides brokers and the SASL password', () => {
  const kafka = (schema as { definitions: Record<string, { properties: Record<string, { default?: unknown }> }> }).definitions.kafka.properties;
  for (const [k, v] of Object.entries(KAFKA_DEFAULTS)) assert.equal(kafka[k].default, v, `default of kafka.${k}`);

  const input = {
    kafka: {
      brokers: ['file:9092'],
      sasl: { mechanism: 'scram-sha-512', username: 'tw', password: 'from-file' },
      topics: [{ pattern: '^prices\\.', format: 'debezium', path: 'prices/{key.id}' }],
    },
  };
  const cfg = parseConfig(input, { TIDEWIRE_KAFKA_BROKERS: 'a:9092, b:9093', TIDEWIRE_KAFKA_PASSWORD: 'secret' });
  assert.deepEqual(cfg.kafka!.brokers, ['a:9092', 'b:9093']);
  assert.equal(cfg.kafka!.sasl!.password, 'secret');
  assert.equal(cfg.kafka!.groupId, 'tidewire');
  assert.equal(cfg.kafka!.startFrom, 'earliest');
  assert.equal(input.kafka.sasl.password, 'from-file', 'the input is not modified');

  assert.throws(() => parseConfig({ kafka: { ...input.kafka, topics: [{ topic: 'a', pattern: 'b', format: 'json', path: 'p/{key}' }] } }, {}), ConfigError);
  assert.throws(() => parseConfig({ kafka: { ...input.kafka, topics: [{ topic: 'a', format: 'xml', path: 'p/{key}' }] } }, {}), /kafka\.topics\.0\.format/);
  assert.throws(() => parseConfig({ kafka: { ...input.kafka, brokers: ['nohost'] } }, {}), /kafka\.brokers\.0/);
});

test('a key remembers its path: a tombstone removes a value-based path, and a key that moves leaves no stale topic', () => {
  const m = mapper({ path: 'prices/{value.venue}/{key}' });
  const quote = (venue: string) => ({ venue, bid: 1 });
  assert.deepEqual(updates(m.map('prices', 0, msg(quote('XNYS'), { key: 'ACME' }))), [{ path: 'prices/XNYS/ACME', source: 'kafka:prices', value: quote('XNYS') }]);
  assert.deepEqual(updates(m.map('prices', 0, msg(quote('XLON'), { key: 'ACME' }))), [
    { path: 'prices/XNYS/ACME', source: 'kafka:prices', value: null },
    { path: 'prices/XLON/ACME', source: 'kafka:prices', value: quote('XLON') },
  ]);
  assert.deepEqual(updates(m.map('prices', 0, msg(null, { key: 'ACME' }))), [{ path: 'prices/XLON/ACME', source: 'kafka:prices', value: null }]);
  // A second tombstone, or one for a key never seen, has nothing to remove.
  assert.deepEqual(m.map('prices', 0, msg(null, { key: 'ACME' })), { kind: 'ignored', why: 'unmappable-tombstone' });
});

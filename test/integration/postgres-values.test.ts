/**
 * Dates and times users can parse (issue 18, item 2): every date/time type of README "Values",
 * read from a real Postgres by the snapshot and by the stream, is text that `new Date()` in
 * JavaScript parses to the instant (or wall-clock time, or day) Postgres itself says the row holds.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { PostgresConnector } from '../../connectors/postgres/index.ts';
import type { IngestSink } from '../../core/ingest.ts';
import type { JsonObject, JsonValue } from '../../core/json.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });
let db: TestPostgres;
let connector: PostgresConnector | undefined;

before(async () => {
  db = await startPostgres();
});
after(async () => {
  await connector?.stop().catch(() => {});
  await db?.stop();
});

/** One row per case: [timestamptz, timestamp, date, time, timetz]. */
const ROWS: [string, string, string, string, string][] = [
  ['2026-01-01 09:30:00.123456+00', '2026-01-01 09:30:00.123456', '2026-08-14', '09:30:00.123456', '09:30:00+00'],
  ['1999-12-31 23:00:00-05', '1969-12-31 23:59:59.999999', '1900-02-28', '00:00:00', '23:59:59.999999+05:30'],
  ['2026-06-30 12:00:00.5+02', '2000-01-01 00:00:00', '0001-01-01', '24:00:00', '12:00:00.5-08'],
  ['0044-03-15 12:00:00+00 BC', '0044-03-15 12:00:00 BC', '0044-03-15 BC', '12:34:56.5', '00:00:00-03:30'],
  ['12345-06-07 08:09:10+00', '12345-06-07 08:09:10', '12345-06-07', '23:59:59.999999', '12:00:00+14'],
];

/** What Postgres says each value is: the instant in ms, the wall-clock fields, the day, the time of day's offset-free UTC instant on 2026-01-01. */
const TRUTH_SQL = `SELECT id,
  floor(extract(epoch FROM tz) * 1000)::float8 AS tz_ms,
  extract(year FROM ts)::int AS ts_year, extract(month FROM ts)::int AS ts_month, extract(day FROM ts)::int AS ts_day,
  extract(hour FROM ts)::int AS ts_hour, extract(minute FROM ts)::int AS ts_minute, floor(extract(microseconds FROM ts) / 1000)::int AS ts_ms,
  floor(extract(epoch FROM d::timestamp) * 1000)::float8 AS d_ms,
  floor(extract(epoch FROM ('2026-01-01'::date + t)) * 1000)::float8 AS t_ms,
  floor(extract(epoch FROM ('2026-01-01'::date + tt)) * 1000)::float8 AS tt_ms
  FROM dt ORDER BY id`;

interface Truth {
  id: number;
  tz_ms: number;
  ts_year: number;
  ts_month: number;
  ts_day: number;
  ts_hour: number;
  ts_minute: number;
  ts_ms: number;
  d_ms: number;
  t_ms: number;
  tt_ms: number;
}

function parsesTo(row: JsonObject, truth: Truth, where: string): void {
  const at = (col: string) => {
    const v: JsonValue = row[col];
    assert.equal(typeof v, 'string', `${where} ${col} is text`);
    return v as string;
  };
  const instant = (text: string) => {
    const ms = new Date(text).getTime();
    assert.ok(!Number.isNaN(ms), `${where}: new Date(${JSON.stringify(text)}) is Invalid Date`);
    return ms;
  };
  // timestamptz: an instant, offset Z.
  assert.match(at('tz'), /Z$/, `${where} tz ${at('tz')}`);
  assert.equal(instant(at('tz')), truth.tz_ms, `${where} tz ${at('tz')}`);
  // timestamp: no offset; Date reads it as local time, field by field what Postgres holds.
  assert.doesNotMatch(at('ts'), /Z$|[+-]\d\d:\d\d$/, `${where} ts ${at('ts')} has no offset`);
  const local = new Date(instant(at('ts')));
  assert.deepEqual(
    [local.getFullYear(), local.getMonth() + 1, local.getDate(), local.getHours(), local.getMinutes(), local.getSeconds() * 1000 + local.getMilliseconds()],
    [truth.ts_year < 0 ? truth.ts_year + 1 : truth.ts_year, truth.ts_month, truth.ts_day, truth.ts_hour, truth.ts_minute, truth.ts_ms],
    `${where} ts ${at('ts')}`,
  );
  // date: Date reads a day alone as its midnight UTC.
  assert.equal(instant(at('d')), truth.d_ms, `${where} d ${at('d')}`);
  // time and timetz: a time of day, parsed on a day.
  assert.equal(instant(`2026-01-01T${at('t')}Z`), truth.t_ms, `${where} t ${at('t')}`);
  assert.equal(instant(`2026-01-01T${at('tt')}`), truth.tt_ms, `${where} tt ${at('tt')}`);
  // Arrays convert each element alike.
  assert.deepEqual(row.tzs, [at('tz'), null]);
}

test('every date and time type, from the snapshot and the stream, is text new Date() parses to what Postgres holds', async () => {
  await db.query('CREATE TABLE dt (id int PRIMARY KEY, tz timestamptz, ts timestamp, d date, t time, tt timetz, tzs timestamptz[], inf timestamptz)');
  const insert = (id: number) =>
    db.query('INSERT INTO dt VALUES ($1, $2, $3, $4, $5, $6, ARRAY[$2::timestamptz, NULL], $7)', [id, ...ROWS[id % ROWS.length], id % 2 === 0 ? 'infinity' : '-infinity']);
  for (let i = 0; i < ROWS.length; i++) await insert(i);
  const store = new TopicStore();
  const sink: IngestSink = { apply: async (u) => void store.apply(u), removeSource: async (s) => void store.removeSource(s) };
  connector = new PostgresConnector({ url: db.url, slot: 'dt', publication: 'dt', snapshotBatchRows: 1000, statusIntervalMs: 100, tables: [{ table: 'dt', path: 'dt/{id}' }] }, sink, { logger });
  await connector.start();
  for (let i = ROWS.length; i < 2 * ROWS.length; i++) await insert(i);
  await waitFor('the streamed rows', () => store.get(`dt/${2 * ROWS.length - 1}`));

  const truth = new Map(((await db.query(TRUTH_SQL)).rows as Truth[]).map((t) => [t.id, t]));
  for (let id = 0; id < 2 * ROWS.length; id++) {
    const row = store.get(`dt/${id}`)!.value as JsonObject;
    parsesTo(row, truth.get(id)!, `${id < ROWS.length ? 'snapshot' : 'stream'} row ${id} (${ROWS[id % ROWS.length][0]})`);
    // infinity has no Date: it stays Postgres's word for it.
    assert.equal(row.inf, id % 2 === 0 ? 'infinity' : '-infinity');
  }
  const snap = store.get('dt/0')!.value as JsonObject;
  assert.deepEqual([snap.tz, snap.ts, snap.d, snap.t, snap.tt], ['2026-01-01T09:30:00.123456Z', '2026-01-01T09:30:00.123456', '2026-08-14', '09:30:00.123456', '09:30:00Z'], 'microseconds kept');
  const bc = store.get('dt/3')!.value as JsonObject;
  assert.deepEqual([bc.tz, bc.d], ['-000043-03-15T12:00:00Z', '-000043-03-15'], '44 BC is the expanded year -000043');
});

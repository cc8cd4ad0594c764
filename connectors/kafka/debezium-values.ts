/**
 * Debezium's encodings → the values tidewire's Postgres connector gives (README "Values";
 * connectors/postgres/pgoutput-values.ts), by the Connect schema the JsonConverter writes beside
 * the payload when `schemas.enable=true`. Without a schema a record passes as it is.
 *
 * Wire facts, from the records of debezium-connector-postgres 3.6.1 (test/fixtures/debezium-3.6.1.Final):
 * - `org.apache.kafka.connect.data.Decimal`: base64 of the unscaled value, big-endian two's
 *   complement; the scale is `parameters.scale`. `io.debezium.data.VariableScaleDecimal`: a
 *   struct `{scale, value}` of the same bytes (Debezium drops trailing zeros: `1.50` → scale 1).
 * - `io.debezium.time.Date`: days since 1970-01-01; `MicroTime`: µs since midnight;
 *   `MicroTimestamp`: µs since the epoch, of a timestamp without time zone; the millisecond and
 *   nanosecond variants (`Time`, `Timestamp`, `NanoTime`, `NanoTimestamp`, Connect's `Date`,
 *   `Time`, `Timestamp`) likewise. `ZonedTimestamp`: ISO text in UTC with 6 fraction digits and
 *   `Z`; `ZonedTime`: `HH:MM:SS[.f]Z` in UTC. Both paths write RFC 3339 (core/datetime-text.ts).
 * - `io.debezium.data.Json`: the JSON as text. `io.debezium.data.Bits`: base64 of the bits as an
 *   integer, little-endian, the first bit the most significant; `parameters.length` the width.
 * - `bytes` without a name: base64.
 */
import { UTC_OFFSET, isoYear } from '../../core/datetime-text.ts';
import { type JsonObject, type JsonValue, isJsonObject } from '../../core/json.ts';
import { DEBEZIUM_UNAVAILABLE_VALUE } from './debezium-envelope.ts';

/** `values` of a `format: debezium` mapping: convert to the direct path's values, or pass Debezium's through. */
export type DebeziumValues = 'postgres' | 'raw';
export const DEBEZIUM_VALUES: readonly DebeziumValues[] = ['postgres', 'raw'];

/** A value that does not match its schema; the record is a bad record. */
export class DebeziumValueError extends Error {}

type Convert = (v: JsonValue) => JsonValue;

/** The TOAST placeholder of an unchanged bytes column, as base64 (kept as the placeholder text). */
const UNAVAILABLE_BASE64 = Buffer.from(DEBEZIUM_UNAVAILABLE_VALUE).toString('base64');

/**
 * A converter for the rows of a struct schema (an envelope's `after`/`before`, or a key), or null
 * when no field needs one. Fields the schema does not name pass as they are.
 * @example rowConverter({ type: 'struct', fields: [{ type: 'int32', name: 'io.debezium.time.Date', field: 'd' }] })!({ d: 20679 }) // { d: '2026-08-14' }
 */
export function rowConverter(schema: JsonValue | undefined): ((row: JsonObject) => JsonObject) | null {
  if (!isJsonObject(schema) || !Array.isArray(schema.fields)) return null;
  let fields: [string, Convert][] | null = null;
  for (const f of schema.fields) {
    if (!isJsonObject(f) || typeof f.field !== 'string') continue;
    const c = converterFor(f);
    if (c) (fields ??= []).push([f.field, c]);
  }
  if (fields === null) return null;
  const list = fields;
  return (row) => {
    const out: JsonObject = { ...row };
    for (const [name, convert] of list) {
      const v = row[name];
      if (v === null || v === undefined || v === DEBEZIUM_UNAVAILABLE_VALUE) continue;
      try {
        out[name] = convert(v);
      } catch (err) {
        throw new DebeziumValueError(`field "${name}": ${(err as Error).message}`);
      }
    }
    return out;
  };
}

/** The schema of the envelope field `name` (`after`, `before`) of an envelope schema. */
export function envelopeFieldSchema(envelope: JsonValue | undefined, name: string): JsonValue | undefined {
  if (!isJsonObject(envelope) || !Array.isArray(envelope.fields)) return undefined;
  return envelope.fields.find((f) => isJsonObject(f) && f.field === name);
}

function converterFor(s: JsonObject): Convert | null {
  const name = typeof s.name === 'string' ? s.name : undefined;
  switch (name) {
    case 'org.apache.kafka.connect.data.Decimal': {
      const scale = Number(isJsonObject(s.parameters) ? s.parameters.scale : 0);
      return (v) => (v === UNAVAILABLE_BASE64 ? DEBEZIUM_UNAVAILABLE_VALUE : decimalText(unscaled(base64(v)), scale));
    }
    case 'io.debezium.data.VariableScaleDecimal':
      return (v) => {
        if (!isJsonObject(v) || typeof v.scale !== 'number') throw new Error('is not a {scale, value} struct');
        return decimalText(unscaled(base64(v.value)), v.scale);
      };
    case 'io.debezium.time.Date':
    case 'org.apache.kafka.connect.data.Date':
      return (v) => dateText(integer(v));
    case 'io.debezium.time.Time':
    case 'org.apache.kafka.connect.data.Time':
      return (v) => timeText(integer(v) * 1000n);
    case 'io.debezium.time.MicroTime':
      return (v) => timeText(integer(v));
    case 'io.debezium.time.NanoTime':
      return (v) => timeText(integer(v) / 1000n);
    case 'io.debezium.time.Timestamp':
    case 'org.apache.kafka.connect.data.Timestamp':
      return (v) => timestampText(integer(v) * 1000n);
    case 'io.debezium.time.MicroTimestamp':
      return (v) => timestampText(integer(v));
    case 'io.debezium.time.NanoTimestamp':
      return (v) => timestampText(integer(v) / 1000n);
    case 'io.debezium.time.ZonedTimestamp':
      return (v) => zonedText(text(v), 'T');
    case 'io.debezium.time.ZonedTime':
      return (v) => zonedText(text(v), '');
    case 'io.debezium.data.Json':
      // JSON.parse, as the direct path does for json/jsonb (pgoutput-values.ts asJson).
      return (v) => JSON.parse(text(v)) as JsonValue;
    case 'io.debezium.data.Bits': {
      const length = Number(isJsonObject(s.parameters) ? s.parameters.length : 0);
      return (v) => (v === UNAVAILABLE_BASE64 ? DEBEZIUM_UNAVAILABLE_VALUE : bitsText(base64(v), length));
    }
  }
  if (name === undefined && s.type === 'bytes') return (v) => (v === UNAVAILABLE_BASE64 ? DEBEZIUM_UNAVAILABLE_VALUE : `\\x${base64(v).toString('hex')}`);
  if (s.type === 'array' && isJsonObject(s.items)) {
    const item = converterFor(s.items);
    if (item === null) return null;
    return (v) => {
      if (!Array.isArray(v)) throw new Error('is not an array');
      return v.map((x) => (x === null ? null : item(x)));
    };
  }
  return null;
}

function text(v: JsonValue): string {
  if (typeof v !== 'string') throw new Error(`is ${typeof v}, not a string`);
  return v;
}

/** An integer number, or the exact digits the parser kept for one beyond 2^53. */
function integer(v: JsonValue): bigint {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  throw new Error(`is ${JSON.stringify(v)}, not an integer`);
}

function base64(v: JsonValue): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw new Error('is not base64');
  return Buffer.from(v, 'base64');
}

/** Big-endian two's complement. */
function unscaled(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  let n = BigInt(`0x${bytes.toString('hex')}`);
  if (bytes[0] & 0x80) n -= 1n << BigInt(bytes.length * 8);
  return n;
}

function decimalText(n: bigint, scale: number): string {
  if (scale <= 0) return (n * 10n ** BigInt(-scale)).toString();
  const neg = n < 0n;
  const digits = (neg ? -n : n).toString().padStart(scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

const US_PER_DAY = 86_400_000_000n;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return (a % b !== 0n && a < 0n) !== b < 0n ? q - 1n : q;
}

/** Days since 1970-01-01 → `YYYY-MM-DD` (proleptic Gregorian, as Postgres; BC years expanded, as the direct path). */
function dateText(days: bigint): string {
  // Howard Hinnant's civil_from_days.
  const z = Number(days) + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${isoYear(y)}-${pad2(m)}-${pad2(d)}`;
}

/** µs since midnight → `HH:MM:SS[.ffffff]` with trailing zeros dropped, as Postgres prints time. */
function timeText(us: bigint): string {
  if (us < 0n || us > US_PER_DAY) throw new Error(`is ${us} µs, not a time of day`);
  const s = Number(us / 1_000_000n);
  return `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}${fraction(Number(us % 1_000_000n))}`;
}

/** µs since the epoch → `YYYY-MM-DDTHH:MM:SS[.ffffff]`, as the direct path gives timestamp. */
function timestampText(us: bigint): string {
  const days = floorDiv(us, US_PER_DAY);
  return `${dateText(days)}T${timeText(us - days * US_PER_DAY)}`;
}

/**
 * `2026-01-01T09:30:00.500000Z` → `2026-01-01T09:30:00.5Z`: the direct path's text, which drops
 * trailing zeros of the fraction as Postgres does (`sep` '' for a ZonedTime). Java writes years
 * past 9999 as `+10000` and BC years as negative proleptic years (`-0043`, 44 BC): expanded years.
 */
function zonedText(v: string, sep: 'T' | ''): string {
  const m = (sep === 'T' ? /^([+-]?\d{4,})(-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/ : /^()(\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/).exec(v);
  if (!m) throw new Error(`${JSON.stringify(v)} is not ${sep === 'T' ? 'an ISO timestamp' : 'a time'} in UTC`);
  const f = (m[3] ?? '').replace(/0+$/, '');
  return `${m[1] === '' ? '' : isoYear(Number(m[1]))}${m[2]}${f === '' ? '' : `.${f}`}${UTC_OFFSET}`;
}

function fraction(us: number): string {
  if (us === 0) return '';
  return `.${String(us).padStart(6, '0').replace(/0+$/, '')}`;
}

/** Little-endian bits, the first bit of the column the most significant, padded to `length`. */
function bitsText(bytes: Buffer, length: number): string {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  const bits = n === 0n ? '' : n.toString(2);
  return bits.padStart(length, '0');
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

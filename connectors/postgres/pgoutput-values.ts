/**
 * Postgres text output → JSON values, by type OID. The snapshot (queried with raw-text type
 * parsers) and the pgoutput stream (decoded without pg's global parsers) both go through these
 * converters, so a row looks the same whichever way it arrived.
 *
 * No silent precision loss: int8 beyond 2^53 and numeric stay strings; timestamps stay text
 * (a JS Date would drop the microseconds), in the RFC 3339 form `new Date()` parses. Both connections run with the session
 * settings in connection.ts (TimeZone=UTC, DateStyle=ISO, ...) so the text itself is identical.
 */
import { UTC_OFFSET, isoYear } from '../../core/datetime-text.ts';
import type { JsonValue } from '../../core/json.ts';

/** Converts one non-null text value. */
export type Converter = (text: string) => JsonValue;

export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  money: 790,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

export const asText: Converter = (text) => text;

const asBool: Converter = (text) => text === 't';

const asInt: Converter = (text) => Number(text);

const asInt8: Converter = (text) => {
  const n = Number(text);
  // Up to 15 digits always fits; beyond that keep the exact text when a double cannot hold it.
  return text.length < 16 || Number.isSafeInteger(n) ? n : text;
};

const asFloat: Converter = (text) => {
  const n = Number(text);
  return Number.isFinite(n) ? n : text; // NaN, Infinity, -Infinity have no JSON number
};

const asJson: Converter = (text) => JSON.parse(text) as JsonValue;

/**
 * Dates and times as RFC 3339 text (core/datetime-text.ts): `2024-01-02 03:04:05.123456+00` →
 * `2024-01-02T03:04:05.123456Z`. Postgres prints a BC year as `0044-03-15 BC` and years past 9999
 * with more digits; both become the expanded years Date parses. `infinity` and `-infinity` stay.
 */
const DATE_TIME = /^(\d{4,})-(\d\d-\d\d)(?: (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::\d\d){0,2})?)?( BC)?$/;

function dateTime(text: string): string {
  const m = DATE_TIME.exec(text);
  if (m === null) return text; // infinity, -infinity
  const year = Number(m[1]);
  const date = `${isoYear(m[5] === undefined ? year : 1 - year)}-${m[2]}`;
  return m[3] === undefined ? date : `${date}T${m[3]}${m[4] === undefined ? '' : offset(m[4])}`;
}

/** `+00` → `Z`, `+05` → `+05:00`, `-03:30` as it is. (An offset with seconds, `+00:53:28`, has no RFC 3339 form and stays.) */
function offset(o: string): string {
  if (o.length === 3) return o === '+00' || o === '-00' ? UTC_OFFSET : `${o}:00`;
  return o === '+00:00' || o === '-00:00' ? UTC_OFFSET : o;
}

/** timestamptz, the common case first: with TimeZone=UTC every value ends in `+00`. */
const asTimestamptz: Converter = (text) => {
  const n = text.length;
  if (n >= 22 && n <= 29 && text.charCodeAt(4) === 0x2d /* - */ && text.charCodeAt(10) === 0x20 /* space */ && text.endsWith('+00')) {
    return `${text.slice(0, 10)}T${text.slice(11, n - 3)}${UTC_OFFSET}`;
  }
  return dateTime(text);
};

/** timestamp (no time zone): a local date-time, `T` between date and time, no offset. */
const asTimestamp: Converter = (text) => {
  const n = text.length;
  if (n >= 19 && n <= 26 && text.charCodeAt(4) === 0x2d && text.charCodeAt(10) === 0x20 && text.charCodeAt(n - 1) !== 0x43 /* C of BC */) {
    return `${text.slice(0, 10)}T${text.slice(11)}`;
  }
  return dateTime(text);
};

/** date: `YYYY-MM-DD` as it is; BC and five-digit years as expanded years. */
const asDate: Converter = (text) => (text.length === 10 ? text : dateTime(text));

/** timetz: `09:30:00+00` → `09:30:00Z`, `09:30:00+05:30` as it is. */
const asTimetz: Converter = (text) => {
  const m = /^(\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::\d\d){0,2})$/.exec(text);
  return m === null ? text : `${m[1]}${offset(m[2])}`;
};

const SCALARS = new Map<number, Converter>([
  [OID.bool, asBool],
  [OID.int2, asInt],
  [OID.int4, asInt],
  [OID.oid, asInt],
  [OID.int8, asInt8],
  [OID.float4, asFloat],
  [OID.float8, asFloat],
  [OID.json, asJson],
  [OID.jsonb, asJson],
  [OID.timestamp, asTimestamp],
  [OID.timestamptz, asTimestamptz],
  [OID.date, asDate],
  [OID.timetz, asTimetz],
  // numeric and money keep their exact text; bytea its \x hex text; the rest are text anyway.
  [OID.numeric, asText],
  [OID.money, asText],
  [OID.bytea, asText],
  [OID.text, asText],
  [OID.varchar, asText],
  [OID.bpchar, asText],
  [OID.char, asText],
  [OID.name, asText],
  [OID.uuid, asText],
  [OID.time, asText],
  [OID.interval, asText],
]);

/** Array type OID → element type OID, for the element types above. */
const ARRAYS = new Map<number, number>([
  [1000, OID.bool],
  [1001, OID.bytea],
  [1002, OID.char],
  [1003, OID.name],
  [1016, OID.int8],
  [1005, OID.int2],
  [1007, OID.int4],
  [1009, OID.text],
  [1028, OID.oid],
  [199, OID.json],
  [1021, OID.float4],
  [1022, OID.float8],
  [791, OID.money],
  [1014, OID.bpchar],
  [1015, OID.varchar],
  [1182, OID.date],
  [1183, OID.time],
  [1115, OID.timestamp],
  [1185, OID.timestamptz],
  [1187, OID.interval],
  [1270, OID.timetz],
  [1231, OID.numeric],
  [2951, OID.uuid],
  [3807, OID.jsonb],
]);

const builtinArrays = new Map<number, Converter>();
for (const [arrayOid, elemOid] of ARRAYS) builtinArrays.set(arrayOid, arrayConverter(SCALARS.get(elemOid)!));

/**
 * The converter for a built-in type, or undefined when the OID is not one we know (a domain,
 * enum, extension type or another array): the type registry resolves those from the catalog.
 */
export function builtinConverter(oid: number): Converter | undefined {
  return SCALARS.get(oid) ?? builtinArrays.get(oid);
}

/**
 * A converter for a one-dimensional array whose elements convert with `element`. Anything the
 * simple parser does not take (several dimensions, explicit bounds like `[0:1]={..}`) stays text.
 */
export function arrayConverter(element: Converter): Converter {
  return (text) => {
    const items = parseArrayText(text);
    if (items === null) return text;
    const out: JsonValue[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      out[i] = item === null ? null : element(item);
    }
    return out;
  };
}

/**
 * Parses the text form of a one-dimensional array with `,` delimiters: `{1,NULL,"a \"b\""}`.
 * Returns null for forms it does not handle (nested arrays, explicit bounds), so the caller keeps
 * the text rather than guessing. Unquoted NULL is SQL NULL; a quoted "NULL" is the string.
 */
export function parseArrayText(text: string): (string | null)[] | null {
  const n = text.length;
  if (n < 2 || text.charCodeAt(0) !== 0x7b /* { */ || text.charCodeAt(n - 1) !== 0x7d /* } */) return null;
  const out: (string | null)[] = [];
  if (n === 2) return out;
  let i = 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) return null; // a nested (multi-dimensional) array
    if (c === 0x22 /* " */) {
      let value = '';
      let start = ++i;
      for (;;) {
        if (i >= n - 1) return null; // unterminated quote
        const q = text.charCodeAt(i);
        if (q === 0x5c /* \ */) {
          value += text.slice(start, i);
          start = i + 1; // keep the escaped character itself
          i += 2;
        } else if (q === 0x22) {
          value += text.slice(start, i);
          i++;
          break;
        } else i++;
      }
      out.push(value);
    } else {
      let end = i;
      while (end < n - 1 && text.charCodeAt(end) !== 0x2c /* , */) end++;
      const raw = text.slice(i, end);
      if (raw.length === 0 || raw.includes('"') || raw.includes('{') || raw.includes('}')) return null;
      out.push(raw === 'NULL' ? null : raw);
      i = end;
    }
    const sep = text.charCodeAt(i);
    if (i === n - 1) return out; // reached the closing brace
    if (sep !== 0x2c) return null;
    i++;
  }
}

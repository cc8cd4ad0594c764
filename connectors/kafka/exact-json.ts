/**
 * JSON.parse without silent integer rounding: an integer token a double cannot hold exactly
 * (beyond ±(2^53 - 1)) becomes its exact decimal text, as a string — the representation
 * tidewire's Postgres connector gives int8 (connectors/postgres/pgoutput-values.ts), so a key or
 * a value read from Kafka names the same topic and holds the same JSON as on the direct path.
 * Everything else parses exactly as JSON.parse does (fractions and exponents stay numbers).
 *
 * Hot path, measured on the kafka-ingest bench: an unsafe integer has at least 16 digits, so a
 * text without a run of 16 digits goes straight to JSON.parse (the check reads every 16th
 * character). Otherwise each such run that is a whole integer token by its neighbours is quoted
 * and JSON.parse reads the rewritten text, so the parsing stays native; Debezium envelopes, whose
 * `ts_ns` fields always have 19 digits, take this path. A run quoted by mistake inside a string
 * can only give invalid JSON (the inserted quote ends the string and a digit follows it), so a
 * failed parse falls back to a rewrite that tracks strings exactly, then to the original error.
 */

const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const COLON = 0x3a;

/**
 * Parses JSON text like JSON.parse (and throws a SyntaxError for the same texts), keeping
 * integers beyond ±(2^53 - 1) as exact strings.
 * @example parseExactJson('{"id":1234567890123456789,"n":42}') // { id: '1234567890123456789', n: 42 }
 */
export function parseExactJson(text: string): unknown {
  if (!hasLongDigitRun(text)) return JSON.parse(text);
  const quick = quoteUnsafeIntegers(text, false);
  if (quick === text) return JSON.parse(text);
  try {
    return JSON.parse(quick);
  } catch {
    // A digit run inside a string was quoted, or the text is not JSON.
  }
  const exact = quoteUnsafeIntegers(text, true);
  if (exact !== text) {
    try {
      return JSON.parse(exact);
    } catch {
      // Not JSON: report the error at its place in the original text.
    }
  }
  return JSON.parse(text);
}

/** Whether the text has 16 digits in a row. */
function hasLongDigitRun(text: string): boolean {
  return nextLongDigitRun(text, 0) >= 0;
}

/**
 * The start of the first run of 16 or more digits at or after `from`, or -1; such a run covers one
 * of every 16 characters, so only those are looked at (4x faster than /\d{16,}/g, measured).
 */
function nextLongDigitRun(text: string, from: number): number {
  const n = text.length;
  for (let i = from + 15; i < n; i += 16) {
    if (!isDigit(text.charCodeAt(i))) continue;
    let a = i;
    while (a > from && isDigit(text.charCodeAt(a - 1))) a--;
    let b = i + 1;
    while (b < n && isDigit(text.charCodeAt(b))) b++;
    if (b - a >= 16) return a;
    i = b; // a run of 16 after this one starts at b + 1 or later, so it covers b + 16
  }
  return -1;
}

function digitRunEnd(text: string, from: number): number {
  let b = from;
  while (b < text.length && isDigit(text.charCodeAt(b))) b++;
  return b;
}

/**
 * The text with integer tokens beyond ±(2^53 - 1) put in quotes. With `trackStrings` only those
 * outside strings; without, every digit run whose neighbours make it a whole integer token.
 */
function quoteUnsafeIntegers(text: string, trackStrings: boolean): string {
  let out = '';
  let copied = 0; // text before this index is in `out` already
  // The lexer's string state: text from `outside` on is read from outside a string; strStart and
  // strEnd are the opening and closing quotes of the last string found.
  let outside = 0;
  let strStart = -1;
  let strEnd = -1;
  for (let at = nextLongDigitRun(text, 0), endAt = 0; at >= 0; at = nextLongDigitRun(text, endAt)) {
    endAt = digitRunEnd(text, at);
    if (trackStrings) {
      if (at > strStart && at < strEnd) continue; // inside the string found for an earlier run
      if (strEnd >= outside) outside = strEnd + 1;
      let inString = false;
      for (;;) {
        const q = text.indexOf('"', outside);
        if (q < 0 || q > at) break;
        const end = closingQuote(text, q);
        if (end < 0) return text; // an unterminated string: not JSON, JSON.parse says so
        strStart = q;
        strEnd = end;
        if (end > at) {
          inString = true;
          break;
        }
        outside = end + 1;
      }
      if (inString) continue;
    }
    // A whole integer token: no leading zero, not a fraction's or an exponent's digits.
    if (text.charCodeAt(at) === ZERO) continue;
    const after = text.charCodeAt(endAt);
    if (after === DOT || after === 0x65 || after === 0x45) continue; // . e E
    const start = text.charCodeAt(at - 1) === MINUS ? at - 1 : at;
    if (start > 0 && !beforeValue(text.charCodeAt(start - 1))) continue;
    const token = text.slice(start, endAt);
    if (Number.isSafeInteger(Number(token))) continue;
    // A number before ':' would be an object key, which JSON does not allow: quoting it would
    // make invalid text valid.
    if (nextNonSpace(text, endAt) === COLON) continue;
    out += `${text.slice(copied, start)}"${token}"`;
    copied = endAt;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** The index of the quote closing the string opened at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  let i = open;
  for (;;) {
    i = text.indexOf('"', i + 1);
    if (i < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(i - 1 - backslashes) === BACKSLASH) backslashes++;
    if ((backslashes & 1) === 0) return i;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The characters that may stand right before a value in JSON: whitespace, `[`, `,`, `:`. */
function beforeValue(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x5b || c === 0x2c || c === COLON;
}

function nextNonSpace(text: string, from: number): number {
  let i = from;
  let c = text.charCodeAt(i);
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++i);
  return c;
}

// Lossless JSON for Kafka records (connectors/kafka/exact-json.ts), property-tested against a
// plain recursive-descent reference parser written here from the JSON grammar (RFC 8259): same
// result or both throw, for valid texts with big integers, strings full of digits, fractions,
// exponents, negative numbers, nested arrays, and for texts broken at random.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseExactJson } from '../../connectors/kafka/exact-json.ts';
import { OID, builtinConverter } from '../../connectors/postgres/pgoutput-values.ts';

/** The reference: JSON grammar by recursive descent; integers beyond ±2^53 as their text. */
function referenceParse(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (): never => {
    throw new SyntaxError(`invalid JSON at ${i}`);
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') return i++, o;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        const k = str();
        ws();
        if (text[i++] !== ':') fail();
        Object.defineProperty(o, k, { value: value(), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return i++, o;
        else fail();
      }
    }
    if (c === '[') {
      i++;
      const a: unknown[] = [];
      ws();
      if (text[i] === ']') return i++, a;
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return i++, a;
        else fail();
      }
    }
    if (c === '"') return str();
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(lit, i)) return (i += lit.length), v;
    }
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail();
    i += m![0].length;
    const n = Number(m![0]);
    return m![1] === undefined && m![2] === undefined && !Number.isSafeInteger(n) ? m![0] : n;
  };
  const str = (): string => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail();
    i++;
    return JSON.parse(text.slice(start, i)) as string; // escapes and control characters, by the book
  };
  const v = value();
  ws();
  if (i !== text.length) fail();
  return v;
}

function outcome(parse: (t: string) => unknown, text: string): { ok: unknown } | { error: string } {
  try {
    return { ok: parse(text) };
  } catch (err) {
    assert.ok(err instanceof SyntaxError, `${parse.name} threw ${String(err)}, not a SyntaxError`);
    return { error: 'SyntaxError' };
  }
}

// Number tokens of every shape, as text: small and huge integers, negative, fractions and
// exponents with long digit runs, 2^53 ± 1.
const bigDigits = fc.stringMatching(/^[1-9]\d{14,24}$/);
const numberToken = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).map(String),
  fc.constantFrom('9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993', '-9007199254740992', '0', '-0'),
  fc.tuple(fc.boolean(), bigDigits).map(([neg, d]) => `${neg ? '-' : ''}${d}`),
  fc.tuple(bigDigits, bigDigits).map(([a, b]) => `${a}.${b}`),
  fc.tuple(fc.boolean(), bigDigits, fc.constantFrom('e', 'E', 'e+', 'e-', 'E-'), fc.integer({ min: 0, max: 400 })).map(([neg, d, e, x]) => `${neg ? '-' : ''}${d}${e}${x}`),
  fc.tuple(fc.integer({ min: 0, max: 9 }), bigDigits).map(([a, d]) => `${a}e${d}`),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
);
// Strings that look like numbers, with quotes and backslashes in front of digits.
const stringToken = fc
  .oneof(
    fc.string(),
    bigDigits,
    fc.tuple(fc.constantFrom('\\', '\\\\', '"', 'a\\"', ' ', ':', ','), bigDigits, fc.constantFrom('', '\\', '"', ':1', 'e5')).map((p) => p.join('')),
    fc.array(fc.tuple(fc.constantFrom(' ', ',', '[', ':', '-', 'x'), bigDigits), { minLength: 2, maxLength: 3 }).map((ps) => ps.flat().join('')),
  )
  .map((s) => JSON.stringify(s));
const space = fc.constantFrom('', ' ', '\n', '\t ', '\r\n');
const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    numberToken,
    stringToken,
    fc.constantFrom('true', 'false', 'null'),
    fc.tuple(space, fc.array(tie('value'), { maxLength: 5 }), space).map(([a, xs, b]) => `[${a}${xs.join(`,${a}`)}${b}]`),
    fc.tuple(space, fc.array(fc.tuple(stringToken, tie('value')), { maxLength: 5 })).map(([s, kv]) => `{${s}${kv.map(([k, v]) => `${k}${s}:${s}${v}`).join(',')}}`),
  ),
})).value;

test('parseExactJson gives what the reference parser gives, for valid JSON of every shape', () => {
  fc.assert(
    fc.property(jsonText, (text) => {
      assert.deepStrictEqual(outcome(parseExactJson, text), outcome(referenceParse, text), text);
    }),
    { numRuns: 5000 },
  );
});

test('parseExactJson rejects exactly what the reference rejects, for texts broken at random', () => {
  const broken = fc
    .tuple(jsonText, fc.nat(), fc.nat({ max: 3 }), fc.constantFrom('', '"', ':', ',', '{', ']', '0', '12345678901234567890', '-', '.', 'e', '\\', ' '))
    .map(([t, at, cut, insert]) => {
      const p = at % (t.length + 1);
      return t.slice(0, p) + insert + t.slice(p + cut);
    });
  fc.assert(
    fc.property(broken, (text) => {
      assert.deepStrictEqual(outcome(parseExactJson, text), outcome(referenceParse, text), text);
    }),
    { numRuns: 10_000 },
  );
});

test('integers beyond 2^53 become exact strings, as the Postgres connector gives int8; the rest is JSON.parse', () => {
  const int8 = builtinConverter(OID.int8)!;
  fc.assert(
    fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (n) => {
      const text = String(n);
      assert.deepStrictEqual(parseExactJson(`{"id":${text}}`), { id: int8(text) });
      assert.deepStrictEqual(parseExactJson(`[${text}]`), [int8(text)]);
    }),
    { numRuns: 2000 },
  );
  assert.deepStrictEqual(parseExactJson('{"id":1234567890123456789,"n":-1234567890123456790,"s":"1234567890123456789","f":1234567890123456789.5,"e":12345678901234567e3}'), {
    id: '1234567890123456789',
    n: '-1234567890123456790',
    s: '1234567890123456789',
    f: 1234567890123456789.5,
    e: 12345678901234567e3,
  });
  assert.deepStrictEqual(parseExactJson('["x 12345678901234567890, 12345678901234567891", 12345678901234567892]'), ['x 12345678901234567890, 12345678901234567891', '12345678901234567892']);
  assert.equal(parseExactJson('9007199254740991'), 9007199254740991, '2^53 - 1 is the largest safe integer');
  assert.equal(parseExactJson('9007199254740992'), '9007199254740992', '2^53 is not safe: 2^53 + 1 reads as the same double');
  assert.equal(parseExactJson('-9007199254740993'), '-9007199254740993');
  assert.throws(() => parseExactJson('{12345678901234567890:1}'), SyntaxError, 'a number is no key, however long');
  assert.throws(() => parseExactJson('{"a":1, 12345678901234567890 :1}'), SyntaxError, 'nor after a comma');
  assert.throws(() => parseExactJson('012345678901234567890'), SyntaxError);
});

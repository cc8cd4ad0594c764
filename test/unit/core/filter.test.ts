import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FILTER_LIMITS, FilterError, compareDecimalText, compileFilter } from '../../../core/filter.ts';
import { tokenize } from '../../../core/filter-lexer.ts';
import { parseFilter } from '../../../core/filter-parser.ts';
import type { JsonObject } from '../../../core/json.ts';

const order: JsonObject = {
  id: 42,
  status: 'open',
  total: '250.00', // numeric columns arrive as strings
  big: '9007199254740993', // int8 beyond 2^53
  paid: false,
  note: null,
  customer: { name: 'Ada', address: { country: 'DE' } },
  tags: ['a', 'b'],
};

const matches = (filter: string, value: JsonObject = order): boolean => compileFilter(filter).test(value);

function refused(filter: string): FilterError {
  try {
    compileFilter(filter);
  } catch (err) {
    assert.ok(err instanceof FilterError, `${filter}: ${String(err)}`);
    assert.equal(err.code, 'FILTER_INVALID');
    return err;
  }
  assert.fail(`${filter} was accepted`);
}

describe('filter: comparisons', () => {
  it('= != < <= > >= on strings, numbers and booleans', () => {
    const yes = [
      "status = 'open'", 'status = "open"', "status == 'open'", "status != 'paid'", "status <> 'paid'",
      'id = 42', 'id >= 42', 'id <= 42', 'id > 41.5', 'id < 1e3', 'id != 7', 'id > -1',
      'paid = false', 'paid != true', "status > 'ok'", "status < 'paid'",
    ];
    const no = ["status = 'paid'", 'id > 42', 'id < 42', 'paid = true', "status >= 'p'", 'id != 42'];
    for (const f of yes) assert.equal(matches(f), true, f);
    for (const f of no) assert.equal(matches(f), false, f);
  });

  it('a number literal compares numeric strings numerically, exactly, beyond 2^53', () => {
    for (const f of ['total = 250', 'total > 99.99', 'total >= 250.0', 'total < 1000', 'total in (100, 250)', 'big > 9007199254740992', 'big = 9007199254740993', 'big != 9007199254740992']) {
      assert.equal(matches(f), true, f);
    }
    for (const f of ['total > 250', 'total < 250', "total = '250'", 'big = 9007199254740992', 'big < 9007199254740993']) assert.equal(matches(f), false, f);
    assert.equal(matches('total > 99', { total: 'n/a' }), false, 'a string that is not a number compares with nothing');
    assert.equal(matches('total != 99', { total: 'n/a' }), false);
  });

  it('compareDecimalText: exact order of decimal texts', () => {
    const cases: Array<[string, string, number]> = [
      ['1', '1.0', 0], ['-0', '0', 0], ['0.000', '-0.0', 0], ['007', '7', 0], ['1e3', '1000', 0], ['1.5e-3', '0.0015', 0],
      ['10', '9.999', 1], ['-10', '-9.999', -1], ['0.1', '0.09', 1], ['123456789012345678901234567890', '123456789012345678901234567891', -1],
      ['-1', '1', -1], ['+5', '5', 0], ['2E2', '199', 1],
    ];
    for (const [a, b, want] of cases) assert.equal(compareDecimalText(a, b), want, `${a} vs ${b}`);
    for (const bad of ['', '-', '.', 'e5', '1e', '1..2', '1.2.3', ' 1', '0x10', 'NaN', 'Infinity', '1e1234567890']) assert.equal(compareDecimalText(bad, '1'), undefined, bad);
  });

  it('compareDecimalText agrees with number order wherever doubles are exact', () => {
    fc.assert(fc.property(fc.integer({ min: -1e9, max: 1e9 }), fc.integer({ min: -1e9, max: 1e9 }), fc.integer({ min: 0, max: 6 }), (a, b, scale) => {
      const ta = (a / 10 ** scale).toFixed(scale);
      const tb = (b / 10 ** scale).toFixed(scale);
      return compareDecimalText(ta, tb) === Math.sign(a - b);
    }));
  });

  it('in, not in, is null, is not null', () => {
    assert.equal(matches("status in ('open', 'paid')"), true);
    assert.equal(matches("status not in ('open', 'paid')"), false);
    assert.equal(matches("status not in ('void')"), true);
    assert.equal(matches('id in (1, 2, 42)'), true);
    assert.equal(matches('note is null'), true);
    assert.equal(matches('missing is null'), true, 'absent is null');
    assert.equal(matches('status is not null'), true);
    assert.equal(matches('note is not null'), false);
    assert.equal(matches("id not in ('x')"), false, 'a number is not comparable with a string list');
  });

  it('null and absent fields compare false with everything, != included; not is plain negation', () => {
    for (const f of ["note = 'x'", "note != 'x'", 'note > 1', "missing in ('a')", "missing not in ('a')", 'missing != 1']) assert.equal(matches(f), false, f);
    assert.equal(matches('not (missing = 1)'), true);
  });

  it('nested fields, and/or/not with precedence, parentheses', () => {
    assert.equal(matches("customer.address.country = 'DE'"), true);
    assert.equal(matches("customer.address.city is null"), true);
    assert.equal(matches("customer.name.first is null"), true, 'a path through a string is absent');
    assert.equal(matches('tags is not null'), true);
    assert.equal(matches("tags = 'a'"), false, 'arrays compare with nothing');
    assert.equal(matches("status = 'paid' or id = 42 and paid = false"), true, 'and binds tighter than or');
    assert.equal(matches("(status = 'paid' or id = 42) and paid = true"), false);
    assert.equal(matches("not status = 'paid'"), true);
    assert.equal(matches("NOT (status = 'open' AND id = 42)"), false, 'keywords in any case');
    assert.equal(matches("`status` = 'open'"), true, 'back-quoted field names');
    assert.equal(matches("`in` = 1", { in: 1 }), true);
    assert.equal(matches("a = 'it\\'s \\u00e9'", { a: "it's é" }), true, 'string escapes');
  });

  it('a hidden field is absent: a filter on it never tells anything about its value', () => {
    const hideCustomer = { all: false, visible: (f: string) => f !== 'customer' };
    const f = compileFilter("customer.name = 'Ada'");
    assert.equal(f.test(order), true);
    assert.equal(f.test(order, hideCustomer), false);
    assert.equal(compileFilter('customer is null').test(order, hideCustomer), true);
    assert.equal(compileFilter("customer.name != 'Bob'").test(order, hideCustomer), false);
  });

  it('the same text compiles to the same object (results can be shared)', () => {
    assert.equal(compileFilter('id = 1'), compileFilter('id = 1'));
  });
});

describe('filter: errors say where and what was expected', () => {
  it('positions are 1-based characters', () => {
    const cases: Array<[string, RegExp, number]> = [
      ["status = 'open' and (total > )", /^unexpected '\)' at 30; expected a value/, 30],
      ['status =', /^unexpected end of filter at 9; expected a value/, 9],
      ['= 1', /^unexpected '=' at 1; expected a field name/, 1],
      ["status = 'open' total > 1", /^unexpected 'total' at 17; expected 'and', 'or' or the end/, 17],
      ['(a = 1', /^unexpected end of filter at 7; expected '\)'/, 7],
      ['a = 1)', /^unexpected '\)' at 6/, 6],
      ["a = 'open", /unterminated string starting at 5/, 5],
      ['a = 01', /leading zero/, 5],
      ['a = null', /use 'is null'/, 5],
      ['a is 1', /expected 'null' or 'not null'/, 6],
      ['a in 1', /expected '\(' and a list/, 6],
      ['a in (1,)', /expected a value/, 9],
      ['a ~ 1', /unexpected character "~" at 3/, 3],
      ['a ! 1', /unexpected '!' at 3/, 3],
      ['and = 1', /expected a field name \(write `and` in back quotes/, 1],
      ['a.b. = 1', /expected a field name/, 6],
      ['a', /expected an operator/, 2],
      ["a = 'x\\q'", /invalid escape at 7/, 7],
      ['', /non-empty/, 1],
      ['   ', /non-empty/, 1],
    ];
    for (const [text, message, position] of cases) {
      const e = refused(text);
      assert.match(e.message, message, text);
      assert.equal(e.position, position, `${text}: ${e.message}`);
    }
  });

  it('limits: length, nesting depth, in-list size, field depth', () => {
    assert.match(refused(`a = '${'x'.repeat(FILTER_LIMITS.maxLength)}'`).message, /limited to 4096 characters/);
    assert.match(refused(`${'('.repeat(FILTER_LIMITS.maxDepth + 1)}a = 1${')'.repeat(FILTER_LIMITS.maxDepth + 1)}`).message, /nests deeper than 32/);
    assert.match(refused(`${'not '.repeat(40)}a = 1`).message, /nests deeper than 32/);
    assert.ok(compileFilter(`${'('.repeat(FILTER_LIMITS.maxDepth)}a = 1${')'.repeat(FILTER_LIMITS.maxDepth)}`));
    const list = (n: number): string => `a in (${Array.from({ length: n }, (_, i) => i).join(',')})`;
    assert.ok(compileFilter(list(FILTER_LIMITS.maxInList)));
    assert.match(refused(list(FILTER_LIMITS.maxInList + 1)).message, /limited to 256 values/);
    assert.match(refused(`${Array.from({ length: 17 }, () => 'a').join('.')} = 1`).message, /more than 16 segments/);
  });

  it('never throws anything but FilterError, and never hangs, on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => {
      try {
        compileFilter(text).test(order);
      } catch (err) {
        if (!(err instanceof FilterError)) throw err;
      }
    }), { numRuns: 2000 });
    // Long digit runs in values are compared without regular-expression backtracking.
    const t0 = performance.now();
    compileFilter('v > 1').test({ v: `${'1'.repeat(999)}x` });
    assert.ok(performance.now() - t0 < 50);
  });

  it('tokenizer and parser expose a plain AST', () => {
    assert.deepEqual(tokenize('a.b >= -1.5').map((t) => [t.kind, t.text, t.at]), [
      ['ident', 'a', 1], ['.', '.', 2], ['ident', 'b', 3], ['op', '>=', 5], ['number', '-1.5', 8], ['end', '', 12],
    ]);
    assert.deepEqual(parseFilter("not a in ('x') or b is not null"), {
      kind: 'or',
      operands: [
        { kind: 'not', operand: { kind: 'in', field: ['a'], values: [{ type: 'string', value: 'x' }], negated: false } },
        { kind: 'null', field: ['b'], negated: true },
      ],
    });
  });
});

describe('filter: limits per session', () => {
  it('the filters of one session may total 65,536 characters', async () => {
    const { checkSubscribe } = await import('../../../services/distribution/subscribe-request.ts');
    const msg = { type: 'subscribe' as const, id: 's', selector: 'a/**', filter: `a = '${'x'.repeat(4000)}'` };
    const ok = checkSubscribe(msg, { live: new Map(), serverMax: 1000, tenantMax: Infinity, filterChars: FILTER_LIMITS.maxTotalPerSession - 4010 });
    assert.equal(ok.ok, true);
    const over = checkSubscribe(msg, { live: new Map(), serverMax: 1000, tenantMax: Infinity, filterChars: FILTER_LIMITS.maxTotalPerSession - 4000 });
    assert.equal(over.ok, false);
    assert.deepEqual(over.ok ? null : [over.error.code, over.error.id], ['FILTER_INVALID', 's']);
    assert.match(over.ok ? '' : over.error.message, /may total 65536 characters/);
  });
});

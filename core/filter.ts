/**
 * Subscription filters: `status = 'open' and total >= 100`, evaluated against topic values. The
 * AST from filter-parser.ts is turned into a tree of small closures (never `eval` or `Function`),
 * so evaluating one costs a few property reads per predicate. Shared by the server (which decides
 * what a session receives) and the client SDK (which routes values to the subscriptions whose
 * filters they match), so both read a filter exactly the same way.
 *
 * Rules (docs/PROTOCOL.md, "Filters"):
 * - A field that is absent, hidden from the session (field permissions), or null compares false
 *   with everything, `!=` included; only `is null` is true for it. `not` is plain negation.
 * - A number literal compares numerically with number fields and with strings that are decimal
 *   numbers (numeric and int8 columns arrive as strings), exactly: no float rounding.
 * - A string literal compares with strings only (by UTF-16 code units); true/false with booleans
 *   only (`=` and `!=`). Anything else is not comparable: false.
 */
import type { JsonObject, JsonValue } from './json.ts';
import { FilterError } from './filter-lexer.ts';
import { type CompareOp, type FilterNode, type Literal, parseFilter } from './filter-parser.ts';

export { FilterError } from './filter-lexer.ts';
export { FILTER_LIMITS, type FilterNode } from './filter-parser.ts';

/** Which top-level fields a reader may see (a security Projection satisfies it). */
export interface FieldVisibility {
  readonly all: boolean;
  visible(field: string): boolean;
}

export interface Filter {
  readonly text: string;
  readonly ast: FilterNode;
  /** Does the value (as a reader restricted to `visible` sees it) match? */
  test(value: JsonObject, visible?: FieldVisibility | null): boolean;
}

type Test = (value: JsonObject, visible: FieldVisibility | null) => boolean;

/** Compiled filters by text: equal filters are the same object, so their results can be shared. */
const compiled = new Map<string, Filter>();
const MAX_COMPILED = 1024;

/**
 * Parses and compiles a filter; throws FilterError (code FILTER_INVALID) with the position.
 * @example
 * const f = compileFilter("status = 'open' and total > 100");
 * f.test({ status: 'open', total: '250.00' }); // true: "250.00" is a numeric string
 */
export function compileFilter(text: string): Filter {
  const hit = compiled.get(text);
  if (hit) return hit;
  const ast = parseFilter(text);
  const test = build(ast);
  const filter: Filter = { text, ast, test: (value, visible) => test(value, visible ?? null) };
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
  compiled.set(text, filter);
  return filter;
}

/** The reason a filter is refused, or null when it is valid. */
export function filterProblem(text: string): FilterError | null {
  try {
    compileFilter(text);
    return null;
  } catch (err) {
    if (err instanceof FilterError) return err;
    throw err;
  }
}

function build(node: FilterNode): Test {
  switch (node.kind) {
    case 'and': {
      const parts = node.operands.map(build);
      return (v, vis) => {
        for (const p of parts) if (!p(v, vis)) return false;
        return true;
      };
    }
    case 'or': {
      const parts = node.operands.map(build);
      return (v, vis) => {
        for (const p of parts) if (p(v, vis)) return true;
        return false;
      };
    }
    case 'not': {
      const inner = build(node.operand);
      return (v, vis) => !inner(v, vis);
    }
    case 'null': {
      const get = getter(node.field);
      return node.negated ? (v, vis) => get(v, vis) != null : (v, vis) => get(v, vis) == null;
    }
    case 'compare': {
      const get = getter(node.field);
      const lit = node.value;
      const holds = OPS[node.op];
      return (v, vis) => holds(compare(get(v, vis), lit));
    }
    case 'in': {
      const get = getter(node.field);
      const values = node.values;
      const negated = node.negated;
      return (v, vis) => {
        const field = get(v, vis);
        if (field == null) return false;
        let found = false;
        let comparable = false;
        for (const lit of values) {
          const c = compare(field, lit);
          if (c === undefined) continue;
          comparable = true;
          if (c === 0) {
            found = true;
            break;
          }
        }
        // `not in`: the field must be comparable with the list (a string is never "not in (1, 2)").
        return negated ? comparable && !found : found;
      };
    }
  }
}

type Getter = (value: JsonObject, visible: FieldVisibility | null) => JsonValue | undefined;

function getter(path: readonly string[]): Getter {
  const top = path[0];
  const rest = path.slice(1);
  return (value, visible) => {
    // A hidden field is absent: a filter can never tell a session anything about it.
    if (visible !== null && !visible.all && !visible.visible(top)) return undefined;
    let cur: JsonValue | undefined = Object.hasOwn(value, top) ? value[top] : undefined;
    for (const key of rest) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, key)) return undefined;
      cur = (cur as JsonObject)[key];
    }
    return cur;
  };
}

/** Sign of field − literal; NaN when they differ but have no order (booleans); undefined when not comparable. */
function compare(field: JsonValue | undefined, lit: Literal): number | undefined {
  if (field === undefined || field === null) return undefined;
  switch (lit.type) {
    case 'number':
      if (typeof field === 'number') return field < lit.value ? -1 : field > lit.value ? 1 : 0;
      if (typeof field === 'string') return compareDecimalText(field, lit.text);
      return undefined;
    case 'string':
      if (typeof field !== 'string') return undefined;
      return field < lit.value ? -1 : field > lit.value ? 1 : 0;
    case 'boolean':
      if (typeof field !== 'boolean') return undefined;
      return field === lit.value ? 0 : NaN;
  }
}

const OPS: Readonly<Record<CompareOp, (c: number | undefined) => boolean>> = {
  '=': (c) => c === 0,
  '!=': (c) => c !== undefined && c !== 0,
  '<': (c) => c !== undefined && c < 0,
  '<=': (c) => c !== undefined && c <= 0,
  '>': (c) => c !== undefined && c > 0,
  '>=': (c) => c !== undefined && c >= 0,
};

interface Decimal {
  readonly negative: boolean;
  /** Significant digits, no leading or trailing zeros; '' for zero. */
  readonly digits: string;
  /** The value is 0.digits × 10^exponent. */
  readonly exponent: number;
}

/**
 * Compares two decimal numbers given as text (`-12.50`, `1e3`, `007`), exactly: int8 and numeric
 * columns arrive as strings precisely because they do not fit a double. Undefined when `a` is not
 * a decimal number (b always is: it is a literal the parser accepted).
 */
export function compareDecimalText(a: string, b: string): number | undefined {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (x === null || y === null) return undefined;
  const xs = x.digits === '' ? 0 : x.negative ? -1 : 1;
  const ys = y.digits === '' ? 0 : y.negative ? -1 : 1;
  if (xs !== ys) return xs < ys ? -1 : 1;
  if (xs === 0) return 0;
  let mag: number;
  if (x.exponent !== y.exponent) mag = x.exponent < y.exponent ? -1 : 1;
  else mag = x.digits === y.digits ? 0 : x.digits < y.digits ? -1 : 1;
  return xs < 0 ? -mag : mag;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Hand-written (a regular expression with optional parts backtracks quadratically on long digit runs). */
function parseDecimal(s: string): Decimal | null {
  if (s.length === 0 || s.length > 1000) return null;
  let i = 0;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    i++;
  }
  const intStart = i;
  while (isDigit(s[i])) i++;
  const int = s.slice(intStart, i);
  let frac = '';
  if (s[i] === '.') {
    const fracStart = ++i;
    while (isDigit(s[i])) i++;
    frac = s.slice(fracStart, i);
  }
  if (int.length === 0 && frac.length === 0) return null;
  let exp = 0;
  if (s[i] === 'e' || s[i] === 'E') {
    i++;
    let expNegative = false;
    if (s[i] === '+' || s[i] === '-') expNegative = s[i++] === '-';
    const expStart = i;
    while (isDigit(s[i])) i++;
    if (i === expStart || i - expStart > 9) return null;
    exp = Number(s.slice(expStart, i)) * (expNegative ? -1 : 1);
  }
  if (i !== s.length) return null;
  const all = int + frac;
  let lead = 0;
  while (lead < all.length && all[lead] === '0') lead++;
  let end = all.length;
  while (end > lead && all[end - 1] === '0') end--;
  return { negative, digits: all.slice(lead, end), exponent: int.length + exp - lead };
}

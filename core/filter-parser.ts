/**
 * Recursive-descent parser of the filter language into an AST, with limits on length, nesting
 * and `in` lists so a filter's cost is bounded before it is ever evaluated.
 *
 *   filter    := or END
 *   or        := and ('or' and)*
 *   and       := unary ('and' unary)*
 *   unary     := 'not' unary | '(' or ')' | predicate
 *   predicate := field ( op literal | ['not'] 'in' '(' literal (',' literal)* ')' | 'is' ['not'] 'null' )
 *   field     := name ('.' name)*          name: [A-Za-z_][A-Za-z0-9_]* or `back-quoted`
 *   literal   := 'string' | "string" | number | true | false
 *   op        := = | != | <> | < | <= | > | >=
 */
import { FilterError, type Token, describeToken, tokenize } from './filter-lexer.ts';

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

export type Literal =
  | { readonly type: 'string'; readonly value: string }
  /** `text` is the literal as written, so numeric strings compare exactly (no float rounding). */
  | { readonly type: 'number'; readonly value: number; readonly text: string }
  | { readonly type: 'boolean'; readonly value: boolean };

export type FilterNode =
  | { readonly kind: 'and' | 'or'; readonly operands: readonly FilterNode[] }
  | { readonly kind: 'not'; readonly operand: FilterNode }
  | { readonly kind: 'compare'; readonly field: readonly string[]; readonly op: CompareOp; readonly value: Literal }
  | { readonly kind: 'in'; readonly field: readonly string[]; readonly values: readonly Literal[]; readonly negated: boolean }
  | { readonly kind: 'null'; readonly field: readonly string[]; readonly negated: boolean };

/** Bounds on one filter; documented in docs/PROTOCOL.md and enforced by the subscribe schema too. */
export const FILTER_LIMITS = {
  /** Characters of the filter text. */
  maxLength: 4096,
  /** Nesting of parentheses and `not`. */
  maxDepth: 32,
  /** Values in one `in (...)` list. */
  maxInList: 256,
  /** Segments of one field path (`a.b.c` is 3). */
  maxFieldSegments: 16,
  /**
   * Characters of all the filters of one session's live subscriptions together: fan-out evaluates
   * them for every change the session's subscriptions match, so their total bounds its cost.
   */
  maxTotalPerSession: 65536,
} as const;

export function parseFilter(text: string): FilterNode {
  if (typeof text !== 'string' || text.trim().length === 0) throw new FilterError('a filter must be a non-empty string, e.g. status = \'open\'', 1);
  if (text.length > FILTER_LIMITS.maxLength) {
    throw new FilterError(`a filter is limited to ${FILTER_LIMITS.maxLength} characters`, FILTER_LIMITS.maxLength + 1);
  }
  return new Parser(tokenize(text)).parse();
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  parse(): FilterNode {
    const node = this.or();
    const t = this.peek();
    if (t.kind !== 'end') throw this.unexpected(t, t.kind === ')' ? "a '(' before it" : "'and', 'or' or the end of the filter");
    return node;
  }

  private peek(): Token {
    return this.tokens[this.pos];
  }

  private next(): Token {
    return this.tokens[this.pos++];
  }

  private isKeyword(word: string): boolean {
    const t = this.peek();
    return t.kind === 'keyword' && t.text === word;
  }

  private unexpected(t: Token, expected: string): FilterError {
    const what = t.kind === 'end' ? 'end of filter' : describeToken(t);
    return new FilterError(`unexpected ${what} at ${t.at}; expected ${expected}`, t.at);
  }

  private or(): FilterNode {
    const first = this.and();
    if (!this.isKeyword('or')) return first;
    const operands = [first];
    while (this.isKeyword('or')) {
      this.pos++;
      operands.push(this.and());
    }
    return { kind: 'or', operands };
  }

  private and(): FilterNode {
    const first = this.unary();
    if (!this.isKeyword('and')) return first;
    const operands = [first];
    while (this.isKeyword('and')) {
      this.pos++;
      operands.push(this.unary());
    }
    return { kind: 'and', operands };
  }

  private unary(): FilterNode {
    const t = this.peek();
    if (t.kind === 'keyword' && t.text === 'not') {
      this.pos++;
      this.enter(t);
      const operand = this.unary();
      this.depth--;
      return { kind: 'not', operand };
    }
    if (t.kind === '(') {
      this.pos++;
      this.enter(t);
      const inner = this.or();
      this.depth--;
      const close = this.next();
      if (close.kind !== ')') throw this.unexpected(close, "')' or 'and', 'or'");
      return inner;
    }
    return this.predicate();
  }

  private enter(t: Token): void {
    if (++this.depth > FILTER_LIMITS.maxDepth) {
      throw new FilterError(`the filter nests deeper than ${FILTER_LIMITS.maxDepth} levels at ${t.at}; simplify it`, t.at);
    }
  }

  private predicate(): FilterNode {
    const field = this.field();
    const t = this.next();
    if (t.kind === 'op') {
      const value = this.literal(`a value to compare ${field.join('.')} with`);
      return { kind: 'compare', field, op: t.text as CompareOp, value };
    }
    if (t.kind === 'keyword' && (t.text === 'in' || (t.text === 'not' && this.isKeyword('in')))) {
      const negated = t.text === 'not';
      if (negated) this.pos++;
      return { kind: 'in', field, values: this.list(), negated };
    }
    if (t.kind === 'keyword' && t.text === 'is') {
      const negated = this.isKeyword('not');
      if (negated) this.pos++;
      const n = this.next();
      if (n.kind !== 'keyword' || n.text !== 'null') throw this.unexpected(n, negated ? "'null'" : "'null' or 'not null'");
      return { kind: 'null', field, negated };
    }
    throw this.unexpected(t, "an operator (=, !=, <, <=, >, >=, in, not in, is null, is not null)");
  }

  private field(): string[] {
    const segments: string[] = [];
    for (;;) {
      const t = this.next();
      if (t.kind !== 'ident') {
        const hint = t.kind === 'keyword' && segments.length === 0 ? ` (write \`${t.text}\` in back quotes for a field of that name)` : '';
        throw this.unexpected(t, `a field name${hint}`);
      }
      segments.push(t.text);
      if (segments.length > FILTER_LIMITS.maxFieldSegments) {
        throw new FilterError(`field path at ${t.at} has more than ${FILTER_LIMITS.maxFieldSegments} segments`, t.at);
      }
      if (this.peek().kind !== '.') return segments;
      this.pos++;
    }
  }

  private list(): Literal[] {
    const open = this.next();
    if (open.kind !== '(') throw this.unexpected(open, "'(' and a list of values");
    const values: Literal[] = [];
    for (;;) {
      const start = this.peek();
      values.push(this.literal('a value'));
      if (values.length > FILTER_LIMITS.maxInList) {
        throw new FilterError(`an 'in' list is limited to ${FILTER_LIMITS.maxInList} values (at ${start.at})`, start.at);
      }
      const t = this.next();
      if (t.kind === ')') return values;
      if (t.kind !== ',') throw this.unexpected(t, "',' or ')'");
    }
  }

  private literal(expected: string): Literal {
    const t = this.next();
    switch (t.kind) {
      case 'string':
        return { type: 'string', value: t.text };
      case 'number':
        return { type: 'number', value: Number(t.text), text: t.text };
      case 'keyword':
        if (t.text === 'true' || t.text === 'false') return { type: 'boolean', value: t.text === 'true' };
        if (t.text === 'null') throw new FilterError(`null at ${t.at} cannot be compared: use 'is null' or 'is not null'`, t.at);
    }
    throw this.unexpected(t, expected);
  }
}

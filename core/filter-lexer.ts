/**
 * Tokens of the subscription filter language (docs/PROTOCOL.md, "Filters"). Hand-written and
 * linear: one pass over the text, no regular expression over user input, so a hostile filter
 * costs at most its (bounded) length. Positions are 1-based character offsets, as in the errors.
 */
import { TidewireError } from './errors.ts';

export type TokenKind =
  | 'ident' // a field name: `status`, or back-quoted `order id`
  | 'string' // 'text' or "text"
  | 'number'
  | 'keyword' // and, or, not, in, is, null, true, false (any case)
  | 'op' // = != <> < <= > >=
  | '(' | ')' | ',' | '.'
  | 'end';

export interface Token {
  readonly kind: TokenKind;
  /** The identifier, the unescaped string, the number's text, the lower-cased keyword, the operator. */
  readonly text: string;
  /** 1-based character position of the token's first character. */
  readonly at: number;
}

export const KEYWORDS: ReadonlySet<string> = new Set(['and', 'or', 'not', 'in', 'is', 'null', 'true', 'false']);

/** A filter that cannot be used; `position` is 1-based, the message says what was expected. */
export class FilterError extends TidewireError {
  readonly position: number;
  constructor(message: string, position: number) {
    super('FILTER_INVALID', message);
    this.name = 'FilterError';
    this.position = position;
  }
}

/** How a token reads in an error message: `')'`, `'status'`, `the end of the filter`. */
export function describeToken(t: Token): string {
  if (t.kind === 'end') return 'the end of the filter';
  const text = t.kind === 'string' ? JSON.stringify(t.text) : t.text;
  return `'${text.length > 24 ? `${text.slice(0, 24)}…` : text}'`;
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isIdentStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isIdentPart = (c: string): boolean => isIdentStart(c) || isDigit(c);

const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\', "'": "'", '"': '"', '/': '/', n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' };

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    const at = i + 1;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === ',' || c === '.') {
      tokens.push({ kind: c, text: c, at });
      i++;
    } else if (c === '=') {
      // '==' is accepted as '=' for people used to C-like languages.
      i += text[i + 1] === '=' ? 2 : 1;
      tokens.push({ kind: 'op', text: '=', at });
    } else if (c === '!') {
      if (text[i + 1] !== '=') throw new FilterError(`unexpected '!' at ${at}; use '!=' or 'not'`, at);
      tokens.push({ kind: 'op', text: '!=', at });
      i += 2;
    } else if (c === '<' || c === '>') {
      const next = text[i + 1];
      if (next === '=') {
        tokens.push({ kind: 'op', text: `${c}=`, at });
        i += 2;
      } else if (c === '<' && next === '>') {
        tokens.push({ kind: 'op', text: '!=', at });
        i += 2;
      } else {
        tokens.push({ kind: 'op', text: c, at });
        i++;
      }
    } else if (c === "'" || c === '"') {
      i = readString(text, i, tokens);
    } else if (c === '`') {
      const end = text.indexOf('`', i + 1);
      if (end < 0) throw new FilterError(`unterminated field name starting at ${at}; close it with a back quote`, at);
      if (end === i + 1) throw new FilterError(`empty field name at ${at}`, at);
      tokens.push({ kind: 'ident', text: text.slice(i + 1, end), at });
      i = end + 1;
    } else if (isDigit(c) || (c === '-' && isDigit(text[i + 1] ?? ''))) {
      i = readNumber(text, i, tokens);
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(text[j])) j++;
      const word = text.slice(i, j);
      const lower = word.toLowerCase();
      tokens.push(KEYWORDS.has(lower) ? { kind: 'keyword', text: lower, at } : { kind: 'ident', text: word, at });
      i = j;
    } else {
      throw new FilterError(`unexpected character ${JSON.stringify(c)} at ${at}`, at);
    }
  }
  tokens.push({ kind: 'end', text: '', at: n + 1 });
  return tokens;
}

function readString(text: string, start: number, tokens: Token[]): number {
  const quote = text[start];
  let out = '';
  let i = start + 1;
  for (;;) {
    if (i >= text.length) throw new FilterError(`unterminated string starting at ${start + 1}; close it with ${quote}`, start + 1);
    const c = text[i];
    if (c === quote) break;
    if (c === '\\') {
      const e = text[i + 1];
      if (e === 'u') {
        const hex = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new FilterError(`invalid \\u escape at ${i + 1}; write \\u followed by 4 hex digits`, i + 1);
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
        continue;
      }
      const mapped = e === undefined ? undefined : ESCAPES[e];
      if (mapped === undefined) throw new FilterError(`invalid escape at ${i + 1}; use \\\\, \\', \\", \\n, \\t or \\uXXXX`, i + 1);
      out += mapped;
      i += 2;
      continue;
    }
    out += c;
    i++;
  }
  tokens.push({ kind: 'string', text: out, at: start + 1 });
  return i + 1;
}

/** JSON's number grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
function readNumber(text: string, start: number, tokens: Token[]): number {
  let i = start;
  if (text[i] === '-') i++;
  const intStart = i;
  while (isDigit(text[i] ?? '')) i++;
  if (i - intStart > 1 && text[intStart] === '0') throw new FilterError(`number at ${start + 1} has a leading zero`, start + 1);
  if (text[i] === '.') {
    i++;
    if (!isDigit(text[i] ?? '')) throw new FilterError(`number at ${start + 1} needs digits after '.'`, start + 1);
    while (isDigit(text[i] ?? '')) i++;
  }
  if (text[i] === 'e' || text[i] === 'E') {
    i++;
    if (text[i] === '+' || text[i] === '-') i++;
    if (!isDigit(text[i] ?? '')) throw new FilterError(`number at ${start + 1} needs digits in its exponent`, start + 1);
    while (isDigit(text[i] ?? '')) i++;
  }
  if (isIdentStart(text[i] ?? '')) throw new FilterError(`unexpected ${JSON.stringify(text[i])} at ${i + 1} after a number`, i + 1);
  const literal = text.slice(start, i);
  if (!Number.isFinite(Number(literal))) throw new FilterError(`number at ${start + 1} is out of range`, start + 1);
  tokens.push({ kind: 'number', text: literal, at: start + 1 });
  return i;
}

/**
 * Path templates map a record onto a topic path: `orders/{customer_id}/{id}`. Each placeholder is
 * a whole segment naming a field (dotted for nested fields, e.g. `{value.venue}`); its value is
 * percent-encoded, so a `/` in the data can never forge another path.
 */
import { ConfigError } from '../../core/errors.ts';
import { encodeSegment, isValidSegment } from '../../core/path.ts';

type Part = { literal: string } | { field: string };

export class PathTemplate {
  readonly text: string;
  readonly fields: readonly string[];
  private readonly parts: readonly Part[];

  /** @param key where the template came from in the configuration, for error messages. */
  constructor(text: string, key: string, allowedFields?: (field: string) => boolean) {
    this.text = text;
    if (typeof text !== 'string' || text.length === 0) throw new ConfigError(key, 'a path template must be a non-empty string');
    const parts: Part[] = [];
    for (const seg of text.split('/')) {
      const m = /^\{([A-Za-z_][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\}$/.exec(seg);
      if (m) {
        if (allowedFields && !allowedFields(m[1])) throw new ConfigError(key, `placeholder {${m[1]}} names no known field`);
        parts.push({ field: m[1] });
      } else if (seg.includes('{') || seg.includes('}')) {
        throw new ConfigError(key, `segment "${seg}": a placeholder must be a whole segment, like orders/{id}`);
      } else if (!isValidSegment(seg)) {
        throw new ConfigError(key, `segment "${seg}" is empty or has characters a path cannot hold (use A-Z a-z 0-9 - _ . ! ' ( ))`);
      } else {
        parts.push({ literal: seg });
      }
    }
    this.parts = parts;
    this.fields = parts.flatMap((p) => ('field' in p ? [p.field] : []));
  }

  /** A selector every path this template renders matches: each placeholder (a whole segment) becomes `*`. */
  get selector(): string {
    return this.parts.map((p) => ('literal' in p ? p.literal : '*')).join('/');
  }

  /**
   * Builds the path; `lookup` returns a field's value, or `undefined` when the record lacks it,
   * in which case the result is `{ missing: field }` so the caller can report the bad record.
   */
  render(lookup: (field: string) => unknown): string | { missing: string } {
    let out = '';
    for (const p of this.parts) {
      let seg: string;
      if ('literal' in p) seg = p.literal;
      else {
        const v = lookup(p.field);
        if (v === undefined) return { missing: p.field };
        seg = encodeSegment(v);
      }
      out = out.length === 0 ? seg : `${out}/${seg}`;
    }
    return out;
  }
}

/** Reads a dotted field path from a nested object; `undefined` when any step is missing. */
export function readField(record: unknown, dotted: string): unknown {
  let cur: unknown = record;
  for (const k of dotted.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/**
 * Read grants as configured: a selector whose whole segments may be token claims
 * (`orders/{claims.customer_id}/**`). A claim value becomes a segment only through
 * encodeSegment, exactly like row data in a topic path, so a claim holding `*`, `**`, `a/b` or
 * `..` is one literal segment and can never widen the grant.
 */
import { ConfigError } from '../../core/errors.ts';
import { encodeSegment } from '../../core/path.ts';
import { type Selector, SelectorError, parseSelector } from '../../core/selector.ts';
import { readClaim } from './claims.ts';
import { Projection } from './field-projection.ts';
import type { ReadGrantSpec } from './security-config.ts';

const PLACEHOLDER = /^\{claims\.([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*)\}$/;
/** A list claim gives one pattern per element; past this many patterns the grant matches nothing. */
export const MAX_CLAIM_EXPANSION = 256;

/** One grant of one role, compiled once at load. */
export interface GrantTemplate {
  /** The pattern as configured. */
  readonly text: string;
  readonly projection: Projection;
  /** Parsed once when the pattern uses no claim. */
  readonly fixed: Selector | null;
  /** Per segment: the literal text, or the claim name to substitute. */
  readonly parts: ReadonlyArray<{ readonly literal: string } | { readonly claim: string }>;
  readonly descendants: boolean;
}

/** A grant with claims substituted: what one session may read, and which fields. */
export interface Grant {
  readonly selector: Selector;
  readonly projection: Projection;
}

export function compileGrant(spec: string | ReadGrantSpec, key: string): GrantTemplate {
  const text = typeof spec === 'string' ? spec : spec.pattern;
  const projection = Projection.of(typeof spec === 'string' ? undefined : spec.fields);
  const raw = text.split('/');
  const parts: GrantTemplate['parts'][number][] = [];
  let claims = 0;
  // Substitute a valid segment for each claim so the grammar (and its errors) stay the selector's own.
  const probe = raw.map((segment) => {
    const m = PLACEHOLDER.exec(segment);
    if (m) {
      claims++;
      parts.push({ claim: m[1] });
      return 'x';
    }
    if (segment.includes('{') || segment.includes('}')) {
      throw new ConfigError(key, `"${text}": a claim must be a whole segment written {claims.<name>}, e.g. orders/{claims.customer_id}/**`);
    }
    if (segment !== '**') parts.push({ literal: segment });
    return segment;
  });
  let parsed: Selector;
  try {
    parsed = parseSelector(probe.join('/'));
  } catch (err) {
    if (err instanceof SelectorError) throw new ConfigError(key, `"${text}" is not a valid pattern: ${err.message}`);
    throw err;
  }
  return { text, projection, fixed: claims === 0 ? parsed : null, parts, descendants: parsed.descendants };
}

/** The selectors a template grants for these claims: none when a claim is missing or unusable. */
export function instantiate(template: GrantTemplate, claims: Readonly<Record<string, unknown>>): Selector[] {
  if (template.fixed) return [template.fixed];
  let prefixes: string[][] = [[]];
  for (const part of template.parts) {
    if ('literal' in part) {
      for (const p of prefixes) p.push(part.literal);
      continue;
    }
    const values = claimSegments(readClaim(claims, part.claim));
    if (values === null) return [];
    const next: string[][] = [];
    for (const p of prefixes) for (const v of values) next.push([...p, v]);
    if (next.length > MAX_CLAIM_EXPANSION) return [];
    prefixes = next;
  }
  return prefixes.map((segments) => {
    const text = template.descendants ? (segments.length ? `${segments.join('/')}/**` : '**') : segments.join('/');
    return { text, segments, descendants: template.descendants, exact: !template.descendants && !segments.includes('*') };
  });
}

function claimSegments(value: unknown): string[] | null {
  const one = (v: unknown): string | null =>
    typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) ? encodeSegment(v) : null;
  if (Array.isArray(value)) {
    if (value.length === 0 || value.length > MAX_CLAIM_EXPANSION) return null;
    const out: string[] = [];
    for (const v of value) {
      const s = one(v);
      if (s === null) return null;
      out.push(s);
    }
    return out;
  }
  const s = one(value);
  return s === null ? null : [s];
}

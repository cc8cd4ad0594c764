/**
 * Which top-level fields of a topic value a permission shows, and the projection of values and
 * JSON Patch deltas onto them. An operation is kept or dropped by the top-level member its
 * pointer starts in, so a replace deep inside a hidden field (`/customer/email`) is hidden too.
 * Projections are interned: equal rules are the same object, so comparing two is `===`.
 */
import type { JsonObject } from '../../core/json.ts';
import type { PatchOp } from '../../core/delta.ts';
import type { FieldRule } from './security-config.ts';

type Kind = 'all' | 'include' | 'exclude';

const interned = new Map<string, Projection>();

export class Projection {
  /** Every field. */
  static readonly ALL: Projection = new Projection('all', new Set(), 'all');

  private readonly merged = new Map<Projection, Projection>();

  private constructor(
    readonly kind: Kind,
    private readonly fields: ReadonlySet<string>,
    /** Canonical text of the rule, e.g. `exclude:customer_name,email`. */
    readonly key: string,
  ) {}

  /** The interned projection for a configured rule (`undefined`: every field). */
  static of(rule: FieldRule | undefined): Projection {
    if (!rule) return Projection.ALL;
    return rule.include ? Projection.make('include', rule.include) : Projection.make('exclude', rule.exclude!);
  }

  private static make(kind: 'include' | 'exclude', names: Iterable<string>): Projection {
    const sorted = [...new Set(names)].sort();
    if (kind === 'exclude' && sorted.length === 0) return Projection.ALL;
    const key = `${kind}:${JSON.stringify(sorted)}`;
    let p = interned.get(key);
    if (!p) interned.set(key, (p = new Projection(kind, new Set(sorted), key)));
    return p;
  }

  get all(): boolean {
    return this.kind === 'all';
  }

  visible(field: string): boolean {
    switch (this.kind) {
      case 'all':
        return true;
      case 'include':
        return this.fields.has(field);
      case 'exclude':
        return !this.fields.has(field);
    }
  }

  /**
   * What a session with both permissions sees: every field either shows.
   * include ∪ include; exclude ∩ exclude; include I with exclude E → exclude (E − I).
   */
  union(other: Projection): Projection {
    if (this === other || this.kind === 'all') return this;
    if (other.kind === 'all') return other;
    let m = this.merged.get(other);
    if (m) return m;
    if (this.kind === 'include' && other.kind === 'include') m = Projection.make('include', [...this.fields, ...other.fields]);
    else if (this.kind === 'exclude' && other.kind === 'exclude') m = Projection.make('exclude', [...this.fields].filter((f) => other.fields.has(f)));
    else {
      const inc = this.kind === 'include' ? this : other;
      const exc = this.kind === 'include' ? other : this;
      m = Projection.make('exclude', [...exc.fields].filter((f) => !inc.fields.has(f)));
    }
    this.merged.set(other, m);
    other.merged.set(this, m);
    return m;
  }

  /** The value with hidden fields left out (the value itself when every field is visible). */
  value(value: JsonObject): JsonObject {
    if (this.kind === 'all') return value;
    const out: JsonObject = {};
    for (const k in value) if (this.visible(k)) out[k] = value[k];
    return out;
  }

  /**
   * The operations on visible fields, in order; empty when the patch touches only hidden fields.
   * null when an operation addresses the whole document (the caller sends a projected value).
   * When every operation is visible, `ops` itself (not a copy): callers then reuse the change's
   * own wire text, so a masked session gets the same string, and frame, as everyone else.
   */
  patch(ops: readonly PatchOp[]): readonly PatchOp[] | null {
    let out: PatchOp[] | null = null;
    for (let i = 0; i < ops.length; i++) {
      const field = topField(ops[i].path);
      if (field === null) return null;
      if (this.visible(field)) {
        if (out !== null) out.push(ops[i]);
      } else if (out === null) {
        out = ops.slice(0, i);
      }
    }
    return out ?? ops;
  }

  /** Does the patch change anything this projection shows? */
  touches(ops: readonly PatchOp[]): boolean {
    for (const op of ops) {
      const field = topField(op.path);
      if (field === null || this.visible(field)) return true;
    }
    return false;
  }
}

/** The top-level member a JSON Pointer starts in (RFC 6901 unescaped), or null for the root. */
export function topField(pointer: string): string | null {
  if (pointer.length === 0) return null;
  const end = pointer.indexOf('/', 1);
  const token = end < 0 ? pointer.slice(1) : pointer.slice(1, end);
  return token.includes('~') ? token.replace(/~1/g, '/').replace(/~0/g, '~') : token;
}

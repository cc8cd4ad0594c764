/**
 * Converters for types that are not built in, resolved from pg_type: a domain converts like its
 * base type, an array of any type with `,` delimiters becomes a JSON array, and everything else
 * (enums, extension types, ranges, composites) stays text.
 *
 * Why this matters: a snapshot's RowDescription reports a domain column with its base type OID,
 * while pgoutput's Relation message reports the domain's own OID. Converting both by the
 * column's catalog type keeps the two paths identical.
 */
import type { CatalogQuery } from './catalog.ts';
import { type Converter, arrayConverter, asText, builtinConverter } from './pgoutput-values.ts';

interface TypeRow {
  oid: number;
  typtype: string;
  typbasetype: number;
  typelem: number;
  typcategory: string;
  typdelim: string;
}

/** Chains longer than this (domain of array of domain ...) are cut off and read as text. */
const MAX_DEPTH = 6;

export class TypeRegistry {
  private readonly resolved = new Map<number, Converter>();

  /** The converter for a type OID, or undefined when the catalog has not been asked about it yet. */
  converter(oid: number): Converter | undefined {
    return builtinConverter(oid) ?? this.resolved.get(oid);
  }

  /** The OIDs among `oids` that need a catalog lookup. */
  unknown(oids: Iterable<number>): number[] {
    const out = new Set<number>();
    for (const oid of oids) if (this.converter(oid) === undefined) out.add(oid);
    return [...out];
  }

  /** Looks the given OIDs up in pg_type (and the types they are built on). */
  async resolve(client: CatalogQuery, oids: Iterable<number>): Promise<void> {
    const wanted = this.unknown(oids);
    let pending = wanted;
    if (pending.length === 0) return;
    const rows = new Map<number, TypeRow>();
    for (let depth = 0; pending.length > 0 && depth < MAX_DEPTH; depth++) {
      const res = await client.query<TypeRow>(
        'SELECT oid::int AS oid, typtype::text, typbasetype::int AS typbasetype, typelem::int AS typelem, typcategory::text, typdelim::text FROM pg_type WHERE oid = ANY($1::oid[])',
        [pending],
      );
      for (const r of res.rows) rows.set(r.oid, r);
      const next = new Set<number>();
      for (const r of res.rows) {
        for (const dep of [r.typtype === 'd' ? r.typbasetype : 0, r.typcategory === 'A' ? r.typelem : 0]) {
          if (dep !== 0 && !rows.has(dep) && this.converter(dep) === undefined) next.add(dep);
        }
      }
      pending = [...next];
    }
    for (const oid of new Set([...wanted, ...rows.keys()])) {
      if (this.converter(oid) === undefined) this.resolved.set(oid, this.build(oid, rows, 0));
    }
  }

  private build(oid: number, rows: Map<number, TypeRow>, depth: number): Converter {
    const known = this.converter(oid);
    if (known) return known;
    const row = rows.get(oid);
    if (!row || depth >= MAX_DEPTH) return asText;
    if (row.typtype === 'd') return this.build(row.typbasetype, rows, depth + 1);
    if (row.typcategory === 'A' && row.typelem !== 0 && row.typdelim === ',') {
      return arrayConverter(this.build(row.typelem, rows, depth + 1));
    }
    return asText;
  }
}

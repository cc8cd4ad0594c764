/**
 * A fingerprint per mapped table: what the topics a table produced depend on (its mappings as
 * configured, its columns and their types). Stored with the state; a table whose fingerprint
 * changed while tidewire was stopped is re-read at start, the others resume from the stream.
 */
import { createHash } from 'node:crypto';
import type { TableMapper } from './table-mapper.ts';

/** Fingerprint by source name (`postgres:<schema>.<table>`), over every mapping of that table. */
export function mappingFingerprints(mappers: readonly TableMapper[]): Map<string, string> {
  const bySource = new Map<string, TableMapper[]>();
  for (const m of mappers) {
    const list = bySource.get(m.source);
    if (list) list.push(m);
    else bySource.set(m.source, [m]);
  }
  const out = new Map<string, string>();
  for (const [source, list] of bySource) {
    const table = list[0].spec.table;
    const basis = {
      columns: table.columns.map((c) => [c.name, c.typeOid]),
      replicaIdentity: table.replicaIdentity,
      mappings: list.map((m) => m.spec.mapping),
    };
    out.set(source, `1:${createHash('sha256').update(JSON.stringify(basis)).digest('hex').slice(0, 32)}`);
  }
  return out;
}

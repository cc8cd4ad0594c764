/**
 * The ingest table's mapping without a database: the production TableMapper over a TableSpec
 * built by hand, fed pgoutput-style raw text tuples. For the suites that measure topic state and
 * distribution alone (Postgres decoding is measured by `ingest`).
 */
import type { Logger } from 'pino';
import { PathTemplate } from '../../connectors/mapping/path-template.ts';
import type { TableInfo } from '../../connectors/postgres/catalog.ts';
import type { TableSpec } from '../../connectors/postgres/preflight.ts';
import { type RawTuple, TableMapper } from '../../connectors/postgres/table-mapper.ts';
import { TypeRegistry } from '../../connectors/postgres/type-registry.ts';

const COLUMNS: Array<[string, number]> = [
  ['id', 20], ['a', 23], ['b', 20], ['c', 23], ['label', 25], ['note', 25], ['price', 1700], ['ts', 1184], ['flag', 16], ['doc', 3802],
];

export function syntheticMapper(log: Logger, path = 'items/{id}'): TableMapper {
  const table: TableInfo = {
    schema: 'public',
    name: 'bench_items',
    oid: 1,
    relkind: 'r',
    replicaIdentity: 'default',
    columns: COLUMNS.map(([name, typeOid]) => ({ name, typeOid, generated: false })),
    primaryKey: ['id'],
    identityIndex: null,
    rowEstimate: 0,
    canSelect: true,
  };
  const spec: TableSpec = { index: 0, mapping: { table: 'public.bench_items', path }, table, template: new PathTemplate(path, 'path'), keyColumns: ['id'] };
  return new TableMapper(spec, new TypeRegistry(), log);
}

/** The row `id` as Postgres prints it (as in bench/lib/ingest-workload.ts), at update generation `gen`. */
export function rawRow(id: number, gen = 0): Record<string, string> {
  return {
    id: String(id),
    a: String((id + gen) % 1000),
    b: String(id * 7),
    c: String(id % 13),
    label: gen % 3 === 1 ? `item-${id}*${gen}` : `item-${id}`,
    note: 'n'.repeat(id % 40),
    price: ((id % 100000) / 100 + (gen % 3 === 1 ? gen : 0)).toFixed(2),
    ts: gen % 3 === 2 ? `2025-01-01 10:00:${String(gen % 60).padStart(2, '0')}.123456+00` : '2025-01-01 09:00:00.123456+00',
    flag: (id + (gen % 3 === 2 ? gen : 0)) % 2 === 0 ? 't' : 'f',
    doc: `{"k": ${id}, "tags": ["x", "y"], "nested": {"v": ${id % 7}}${gen % 3 === 2 ? `, "u": ${gen}` : ''}}`,
  };
}

export type { RawTuple };

// A table's where against what the server said of it, including what the test server cannot
// produce (Postgres below 15), and the one-filter-per-table rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TableInfo } from '../../../connectors/postgres/catalog.ts';
import { ConfigError } from '../../../core/errors.ts';
import { PostgresConnectorError } from '../../../connectors/postgres/errors.ts';
import { checkOneFilterPerTable, checkRowFilter, checkTable } from '../../../connectors/postgres/preflight.ts';
import { publishedTables } from '../../../connectors/postgres/publication.ts';

const server = { database: 'shop', role: 'app' };
const orders: TableInfo = {
  schema: 'public', name: 'orders', oid: 1, relkind: 'r', replicaIdentity: 'default', primaryKey: ['id'], identityIndex: null, rowEstimate: 0, canSelect: true,
  columns: [{ name: 'id', typeOid: 23, generated: false }, { name: 'status', typeOid: 25, generated: false }, { name: 'note', typeOid: 25, generated: false }, { name: 'tax', typeOid: 23, generated: true }],
};
const accepted = { ok: true, columns: ['status'], publicationError: null } as const;
const rowFilterError = (f: () => void, message: RegExp) =>
  assert.throws(f, (err: unknown) => err instanceof PostgresConnectorError && err.code === 'PG_ROW_FILTER' && message.test(err.message));

test('where is refused below Postgres 15, when the server rejects it, and on columns outside the replica identity', () => {
  const spec = checkTable({ table: 'orders', path: 'o/{id}', where: `status = 'open'` }, 2, orders, server);
  rowFilterError(() => checkRowFilter(spec, accepted, 140005), /postgres\.tables\.2\.where: row filters need Postgres 15 or newer \(this server is 14\)/);
  rowFilterError(() => checkRowFilter(spec, { ok: false, error: 'column "statu" does not exist' }, 170000), /cannot use \(status = 'open'\).*column "statu" does not exist/);
  rowFilterError(() => checkRowFilter(spec, { ok: true, columns: ['status'], publicationError: 'User-defined functions are not allowed' }, 170000), /refuses .* row filter.*User-defined/);
  rowFilterError(() => checkRowFilter(spec, accepted, 170000), /reads status, which the replica identity of public\.orders \(id\) does not cover.*REPLICA IDENTITY FULL/);
  checkRowFilter(spec, { ok: true, columns: ['id'], publicationError: undefined }, 170000);
  const full = checkTable({ table: 'orders', path: 'o/{id}', where: `status = 'open'` }, 0, { ...orders, replicaIdentity: 'full' }, server);
  checkRowFilter(full, accepted, 170000);
});

test('every mapping of one table carries the same where', () => {
  const a = checkTable({ table: 'orders', path: 'a/{id}', where: 'id > 1' }, 0, orders, server);
  const b = checkTable({ table: 'orders', path: 'b/{id}' }, 1, orders, server);
  assert.throws(() => checkOneFilterPerTable([a, b]), (err: unknown) => err instanceof ConfigError && /postgres\.tables\.1\.where/.test(err.message) && /where \(id > 1\)/.test(err.message));
  checkOneFilterPerTable([a, checkTable({ table: 'public.orders', path: 'b/{id}', where: 'id > 1' }, 1, orders, server)]);
});

test('column lists: the columns some mapping reads, never generated ones, none before 15 or with REPLICA IDENTITY FULL', () => {
  const excl = checkTable({ table: 'orders', path: 'o/{id}', exclude: ['note', 'id'] }, 0, orders, server);
  assert.deepEqual(publishedTables([excl], 170000), [{ table: orders, columns: ['id', 'status'], where: null }], 'the key stays in the list');
  const other = checkTable({ table: 'orders', path: 'n/{id}', include: ['note'] }, 1, orders, server);
  assert.deepEqual(publishedTables([excl, other], 170000)[0].columns, null, 'together they read every column: no list');
  assert.equal(publishedTables([excl], 140000)[0].columns, null);
  const full = { ...orders, replicaIdentity: 'full' as const };
  assert.equal(publishedTables([checkTable({ table: 'orders', path: 'o/{id}', exclude: ['note'] }, 0, full, server)], 170000)[0].columns, null);
});

// Preflight checks against catalog rows made up here, including ones the test server cannot
// produce (wal_level=replica, an old server): each failure has a stable code and says what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../core/errors.ts';
import type { ServerInfo, TableInfo } from '../../../connectors/postgres/catalog.ts';
import { PostgresConnectorError } from '../../../connectors/postgres/errors.ts';
import { checkRole, checkServer, checkTable } from '../../../connectors/postgres/preflight.ts';

const server: ServerInfo = {
  versionNum: 170010,
  walLevel: 'logical',
  maxReplicationSlots: 10,
  maxWalSenders: 10,
  role: 'app',
  isSuperuser: false,
  hasReplication: true,
  hasCloudReplicationRole: false,
  database: 'shop',
};

const orders: TableInfo = {
  schema: 'public',
  name: 'orders',
  oid: 16384,
  relkind: 'r',
  replicaIdentity: 'default',
  columns: [
    { name: 'id', typeOid: 23, generated: false },
    { name: 'customer_id', typeOid: 23, generated: false },
    { name: 'total', typeOid: 1700, generated: false },
    { name: 'total_with_tax', typeOid: 1700, generated: true },
  ],
  primaryKey: ['id'],
  identityIndex: null,
  rowEstimate: 10,
  canSelect: true,
};

function fails(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PostgresConnectorError, `expected a PostgresConnectorError, got ${err}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

function configError(fn: () => unknown, key: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    assert.equal(err.key, key);
    assert.match(err.message, message);
    return true;
  });
}

test('wal_level other than logical: PG_WAL_LEVEL saying how to fix it', () => {
  fails(() => checkServer({ ...server, walLevel: 'replica' }), 'PG_WAL_LEVEL', /set wal_level = logical in postgresql\.conf .*and restart Postgres/);
  checkServer(server);
});

test('old servers and disabled replication', () => {
  fails(() => checkServer({ ...server, versionNum: 90600 }), 'PG_VERSION', /Postgres 10 or newer/);
  fails(() => checkServer({ ...server, maxReplicationSlots: 0 }), 'PG_REPLICATION_LIMIT', /max_replication_slots/);
  fails(() => checkServer({ ...server, maxWalSenders: 0 }), 'PG_REPLICATION_LIMIT', /max_wal_senders/);
});

test('a role without REPLICATION (and not superuser): PG_NO_REPLICATION_PRIVILEGE', () => {
  fails(() => checkRole({ ...server, hasReplication: false }), 'PG_NO_REPLICATION_PRIVILEGE', /ALTER ROLE "app" WITH REPLICATION/);
  checkRole({ ...server, hasReplication: false, isSuperuser: true });
  checkRole({ ...server, hasReplication: false, hasCloudReplicationRole: true });
});

test('missing table, non-tables and unreadable tables', () => {
  fails(() => checkTable({ table: 'orderz', path: 'o/{id}' }, 2, null, server), 'PG_TABLE_MISSING', /postgres\.tables\.2\.table: table public\.orderz does not exist in database "shop"/);
  fails(() => checkTable({ table: 'orders', path: 'o/{id}' }, 0, { ...orders, relkind: 'v' }, server), 'PG_TABLE_MISSING', /is a view/);
  fails(() => checkTable({ table: 'orders', path: 'o/{id}' }, 0, { ...orders, relkind: 'p' }, server), 'PG_TABLE_MISSING', /partitioned/);
  fails(() => checkTable({ table: 'orders', path: 'o/{id}' }, 0, { ...orders, canSelect: false }, server), 'PG_PERMISSION_DENIED', /GRANT SELECT ON "public"\."orders" TO "app"/);
});

test('keys: primary key, replica identity index, FULL; none or NOTHING is PG_NO_PRIMARY_KEY', () => {
  assert.deepEqual(checkTable({ table: 'orders', path: 'o/{id}' }, 0, orders, server).keyColumns, ['id']);
  fails(() => checkTable({ table: 'orders', path: 'o/{id}' }, 0, { ...orders, primaryKey: null }, server), 'PG_NO_PRIMARY_KEY', /has no primary key.*ADD PRIMARY KEY/);
  fails(() => checkTable({ table: 'orders', path: 'o/{id}' }, 0, { ...orders, replicaIdentity: 'nothing' }, server), 'PG_NO_PRIMARY_KEY', /REPLICA IDENTITY NOTHING/);
  const byIndex = { ...orders, primaryKey: null, replicaIdentity: 'index' as const, identityIndex: ['customer_id', 'id'] };
  assert.deepEqual(checkTable({ table: 'orders', path: 'o/{customer_id}/{id}' }, 0, byIndex, server).keyColumns, ['customer_id', 'id']);
  configError(() => checkTable({ table: 'orders', path: 'o/{id}' }, 0, byIndex, server), 'postgres.tables.0.path', /add \{customer_id\}/);
  const full = { ...orders, primaryKey: null, replicaIdentity: 'full' as const };
  assert.deepEqual(checkTable({ table: 'orders', path: 'o/{customer_id}' }, 0, full, server).keyColumns, ['customer_id'], 'FULL without a key: the path fields identify the row');
  assert.deepEqual(checkTable({ table: 'orders', path: 'o/{id}' }, 0, { ...full, primaryKey: ['id'] }, server).keyColumns, ['id']);
});

test('path templates: placeholders must be columns and include the whole key', () => {
  configError(() => checkTable({ table: 'orders', path: 'o/{cust}/{id}' }, 1, orders, server), 'postgres.tables.1.path', /"cust" is not a column of public\.orders; its columns are: id, customer_id, total$/);
  configError(() => checkTable({ table: 'orders', path: 'o/{customer_id}' }, 1, orders, server), 'postgres.tables.1.path', /must include every key column .* add \{id\}/);
  configError(() => checkTable({ table: 'orders', path: 'o/{total_with_tax}/{id}' }, 1, orders, server), 'postgres.tables.1.path', /generated column/);
  configError(() => checkTable({ table: 'orders', path: 'o/x{id}' }, 1, orders, server), 'postgres.tables.1.path', /whole segment/);
  const spec = checkTable({ table: 'public.orders', path: 'customers/{customer_id}/orders/{id}' }, 0, orders, server);
  assert.deepEqual(spec.template.fields, ['customer_id', 'id']);
});

test('include and exclude may only name columns', () => {
  configError(() => checkTable({ table: 'orders', path: 'o/{id}', include: ['id', 'totl'] }, 3, orders, server), 'postgres.tables.3.include', /"totl" is not a column/);
  configError(() => checkTable({ table: 'orders', path: 'o/{id}', exclude: ['secret'] }, 3, orders, server), 'postgres.tables.3.exclude', /"secret" is not a column/);
  checkTable({ table: 'orders', path: 'o/{id}', include: ['total'], exclude: ['customer_id'] }, 3, orders, server);
});

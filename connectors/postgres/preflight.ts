/**
 * Checks made before anything is created on the server, each failing with an error that says
 * what to change. The checks are pure functions of what catalog.ts read, so they are tested
 * without a server that could break them (wal_level cannot be changed on the test harness).
 *
 * Order matters: a table without a usable key must be refused before it is added to the
 * publication, because Postgres then rejects every UPDATE and DELETE on it.
 */
import { ConfigError } from '../../core/errors.ts';
import type { TableMapping } from './postgres-options.ts';
import { PathTemplate } from '../mapping/path-template.ts';
import { type CatalogQuery, type ServerInfo, type TableInfo, loadServerInfo, loadTable, parseTableName, qualifiedName, quoteTable } from './catalog.ts';
import { PostgresConnectorError } from './errors.ts';

/** A configured table that passed preflight: everything the mapper and the snapshot need. */
export interface TableSpec {
  /** Position in postgres.tables, for error messages (`postgres.tables.N.path`). */
  readonly index: number;
  readonly mapping: TableMapping;
  readonly table: TableInfo;
  readonly template: PathTemplate;
  /** Columns that identify a row in UPDATE and DELETE messages; the path includes all of them. */
  readonly keyColumns: readonly string[];
}

export function checkServer(info: ServerInfo): void {
  checkVersion(info);
  checkWalLevel(info);
  checkReplicationLimits(info);
}

// checkServer's three checks one by one, for `tidewire check` (which reports each on its own line).
export function checkVersion(info: Pick<ServerInfo, 'versionNum'>): void {
  if (info.versionNum < 100000) {
    throw new PostgresConnectorError('PG_VERSION', `Postgres ${info.versionNum} is too old: tidewire needs Postgres 10 or newer (the pgoutput plugin)`);
  }
}

export function checkWalLevel(info: Pick<ServerInfo, 'walLevel'>): void {
  if (info.walLevel !== 'logical') {
    throw new PostgresConnectorError(
      'PG_WAL_LEVEL',
      `wal_level is "${info.walLevel}", but logical replication needs "logical": set wal_level = logical in postgresql.conf (or run ALTER SYSTEM SET wal_level = logical) and restart Postgres`,
    );
  }
}

export function checkReplicationLimits(info: Pick<ServerInfo, 'maxReplicationSlots' | 'maxWalSenders'>): void {
  if (info.maxReplicationSlots < 1 || info.maxWalSenders < 1) {
    throw new PostgresConnectorError(
      'PG_REPLICATION_LIMIT',
      `max_replication_slots is ${info.maxReplicationSlots} and max_wal_senders is ${info.maxWalSenders}: set both to at least 1 more than in use (e.g. 10) in postgresql.conf and restart Postgres`,
    );
  }
}

export function checkRole(info: ServerInfo): void {
  if (info.isSuperuser || info.hasReplication || info.hasCloudReplicationRole) return;
  throw new PostgresConnectorError(
    'PG_NO_REPLICATION_PRIVILEGE',
    `role "${info.role}" may not use replication: as a superuser run ALTER ROLE "${info.role}" WITH REPLICATION (on Amazon RDS: GRANT rds_replication TO "${info.role}"), or connect as a role that has it`,
  );
}

/** Validates one configured table against its definition; `table` is null when it does not exist. */
export function checkTable(mapping: TableMapping, index: number, table: TableInfo | null, server: Pick<ServerInfo, 'database' | 'role'>): TableSpec {
  const at = `postgres.tables.${index}`;
  const wanted = parseTableName(mapping.table);
  const name = qualifiedName(wanted);
  if (!table) {
    throw new PostgresConnectorError(
      'PG_TABLE_MISSING',
      `${at}.table: table ${name} does not exist in database "${server.database}" (names are case-sensitive; an unqualified name means schema public): create it or fix the name`,
    );
  }
  if (table.relkind !== 'r') {
    const what = { p: 'a partitioned table (configure its partitions instead)', v: 'a view', m: 'a materialized view', f: 'a foreign table' }[table.relkind] ?? `not a table (relkind ${table.relkind})`;
    throw new PostgresConnectorError('PG_TABLE_MISSING', `${at}.table: ${name} is ${what}; logical replication captures plain tables only`);
  }
  if (!table.canSelect) {
    throw new PostgresConnectorError('PG_PERMISSION_DENIED', `${at}.table: role "${server.role}" cannot read ${name}: run GRANT SELECT ON ${quoteTable(table)} TO "${server.role}"`);
  }

  const template = new PathTemplate(mapping.path, `${at}.path`);
  const columns = new Map(table.columns.map((c) => [c.name, c]));
  const columnList = table.columns.filter((c) => !c.generated).map((c) => c.name).join(', ');
  const checkColumn = (key: string, column: string, what: string): void => {
    const c = columns.get(column);
    if (!c) throw new ConfigError(key, `${what} "${column}" is not a column of ${name}; its columns are: ${columnList}`);
    if (c.generated) throw new ConfigError(key, `${what} "${column}" is a generated column of ${name}, which logical replication does not send`);
  };
  for (const f of template.fields) checkColumn(`${at}.path`, f, 'placeholder');
  for (const c of mapping.include ?? []) checkColumn(`${at}.include`, c, 'included column');
  for (const c of mapping.exclude ?? []) checkColumn(`${at}.exclude`, c, 'excluded column');
  if (mapping.tenantColumn !== undefined) {
    checkColumn(`${at}.tenantColumn`, mapping.tenantColumn, 'tenant column');
    if (!template.fields.includes(mapping.tenantColumn)) {
      throw new ConfigError(`${at}.tenantColumn`, `must also be a placeholder of the path, so a row changing tenant moves topic: e.g. {${mapping.tenantColumn}}/${mapping.path}`);
    }
  }

  const keyColumns = identityColumns(table, template, at, name);
  const missing = keyColumns.filter((k) => !template.fields.includes(k));
  if (missing.length > 0) {
    throw new ConfigError(
      `${at}.path`,
      `must include every key column of ${name} so each row gets its own topic: add ${missing.map((m) => `{${m}}`).join(', ')} (e.g. ${mapping.path}/${missing.map((m) => `{${m}}`).join('/')})`,
    );
  }
  return { index, mapping, table, template, keyColumns };
}

function identityColumns(table: TableInfo, template: PathTemplate, at: string, name: string): readonly string[] {
  switch (table.replicaIdentity) {
    case 'nothing':
      throw new PostgresConnectorError(
        'PG_NO_PRIMARY_KEY',
        `${at}.table: ${name} has REPLICA IDENTITY NOTHING, so its updates and deletes carry no key: run ALTER TABLE ${quoteTable(table)} REPLICA IDENTITY DEFAULT (with a primary key), USING INDEX <unique index>, or FULL`,
      );
    case 'index':
      if (table.identityIndex) return table.identityIndex;
      break;
    case 'full':
      // Every update and delete carries the whole old row; without a primary key the path
      // fields themselves identify the row.
      return table.primaryKey ?? template.fields;
    case 'default':
      if (table.primaryKey) return table.primaryKey;
      break;
  }
  throw new PostgresConnectorError(
    'PG_NO_PRIMARY_KEY',
    `${at}.table: ${name} has no primary key, so its rows cannot be told apart in updates and deletes: add one (ALTER TABLE ${quoteTable(table)} ADD PRIMARY KEY (...)), or set REPLICA IDENTITY USING INDEX <unique index> or REPLICA IDENTITY FULL`,
  );
}

export interface PreflightResult {
  readonly server: ServerInfo;
  readonly tables: readonly TableSpec[];
}

/** Reads the server and every configured table and checks them; throws the first problem found. */
export async function runPreflight(client: CatalogQuery, tables: readonly TableMapping[]): Promise<PreflightResult> {
  const server = await loadServerInfo(client);
  checkServer(server);
  checkRole(server);
  const specs: TableSpec[] = [];
  for (let i = 0; i < tables.length; i++) {
    const info = await loadTable(client, parseTableName(tables[i].table), server.versionNum);
    specs.push(checkTable(tables[i], i, info, server));
  }
  return { server, tables: specs };
}

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
import { type CatalogQuery, type RowFilterInfo, type ServerInfo, type TableInfo, loadRowFilter, loadServerInfo, loadTable, parseTableName, qualifiedName, quoteTable } from './catalog.ts';
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

/** Postgres 15 brought publication row filters and column lists. */
export const ROW_FILTER_VERSION = 150000;

/**
 * A table's `where:` against what the server said of it (catalog.loadRowFilter): parsed, usable
 * as a publication row filter, and reading only columns the replica identity covers. That last
 * one Postgres checks only when a row is updated or deleted, by refusing the statement: a filter
 * on other columns would break the application's writes, so it is refused here first.
 */
export function checkRowFilter(spec: TableSpec, filter: RowFilterInfo, serverVersionNum: number): void {
  const where = spec.mapping.where;
  if (where === undefined) return;
  const at = `postgres.tables.${spec.index}.where`;
  const name = qualifiedName(spec.table);
  if (serverVersionNum < ROW_FILTER_VERSION) {
    throw new PostgresConnectorError(
      'PG_ROW_FILTER',
      `${at}: row filters need Postgres 15 or newer (this server is ${Math.floor(serverVersionNum / 10000)}): upgrade Postgres, or remove where and map the whole table`,
    );
  }
  if (!filter.ok) throw new PostgresConnectorError('PG_ROW_FILTER', `${at}: Postgres cannot use (${where}) as a condition on ${name}: ${filter.error}`);
  if (filter.publicationError) {
    throw new PostgresConnectorError(
      'PG_ROW_FILTER',
      `${at}: Postgres refuses (${where}) as a publication row filter on ${name}: ${filter.publicationError}. A row filter may use the table's own columns, built-in immutable functions and operators only`,
    );
  }
  if (spec.table.replicaIdentity === 'full') return;
  const identity = new Set(spec.keyColumns);
  const outside = filter.columns.filter((c) => !identity.has(c));
  if (outside.length > 0) {
    throw new PostgresConnectorError(
      'PG_ROW_FILTER',
      `${at}: (${where}) reads ${outside.join(', ')}, which the replica identity of ${name} (${spec.keyColumns.join(', ')}) does not cover, so Postgres would refuse every UPDATE and DELETE of the table: run ALTER TABLE ${quoteTable(spec.table)} REPLICA IDENTITY FULL (each UPDATE and DELETE then logs the whole old row), or filter on ${spec.keyColumns.join(', ')} only`,
    );
  }
}

/** A publication has one row filter per table: every mapping of a table must carry the same where. */
export function checkOneFilterPerTable(specs: readonly TableSpec[]): void {
  const first = new Map<string, TableSpec>();
  for (const spec of specs) {
    const name = qualifiedName(spec.table);
    const other = first.get(name);
    if (!other) {
      first.set(name, spec);
      continue;
    }
    if ((other.mapping.where ?? null) !== (spec.mapping.where ?? null)) {
      throw new ConfigError(
        `postgres.tables.${spec.index}.where`,
        `${name} is also mapped by postgres.tables.${other.index} with ${other.mapping.where === undefined ? 'no where' : `where (${other.mapping.where})`}, but a publication filters a table's rows one way only: give every mapping of ${name} the same where (or none)`,
      );
    }
  }
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
    const spec = checkTable(tables[i], i, info, server);
    const where = tables[i].where;
    if (where !== undefined) {
      const filter = server.versionNum >= ROW_FILTER_VERSION ? await loadRowFilter(client, spec.table, where, server.versionNum) : ({ ok: true, columns: [], publicationError: null } as const);
      checkRowFilter(spec, filter, server.versionNum);
    }
    specs.push(spec);
  }
  checkOneFilterPerTable(specs);
  return { server, tables: specs };
}

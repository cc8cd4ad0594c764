/**
 * `tidewire check` for the postgres section: the connector's own preflight (catalog.ts reads,
 * preflight.ts checks, the same error messages) run one check at a time, plus what the connector
 * only finds out when it gets there: room for a slot and a WAL sender, whether the publication can
 * be created or altered, whether the slot is free.
 */
import pg from 'pg';
import { pino } from 'pino';
import {
  ROW_FILTER_VERSION,
  type ServerInfo,
  type TableInfo,
  type TableSpec,
  checkOneFilterPerTable,
  checkReplicationLimits,
  checkRowFilter,
  describePublication,
  loadRowFilter,
  publicationEntry,
  publishedTables,
  sameShape,
  checkRole,
  checkTable,
  checkVersion,
  checkWalLevel,
  clientConfig,
  closeClient,
  describeTarget,
  loadServerInfo,
  loadTable,
  openClient,
  parseTableName,
  qualifiedName,
  quoteTable,
  isTidewireSlot,
  readReplicationUsage,
  readSlots,
} from '../../connectors/postgres/index.ts';
import type { PostgresConfig } from '../config/config.ts';
import { TidewireError, errorMessage } from '../../core/errors.ts';
import { type CheckReport, type CheckResult, fail, ok, warn } from './check-report.ts';
import { formatBytes } from './format.ts';

const silent = pino({ level: 'silent' });

export async function checkPostgres(config: PostgresConfig, report: CheckReport): Promise<void> {
  const target = describeTarget(config.url);
  const slot = config.slot ?? 'tidewire';
  const publication = config.publication ?? 'tidewire';
  let client: pg.Client;
  try {
    client = await openClient(clientConfig(config.url, 'query'), target, silent);
  } catch (err) {
    report.add(fail('database', errorMessage(err)));
    report.note('the other Postgres checks need a connection: fix this one first');
    return;
  }
  try {
    const server = await loadServerInfo(client);
    const version = `${Math.floor(server.versionNum / 10000)}.${server.versionNum % 10000}`;
    report.add(ok('database', `connected to ${target} as role "${server.role}" (Postgres ${version})`));
    report.add(attempt('postgres version', () => checkVersion(server), `${version} (10 or newer needed)`));
    report.add(attempt('wal_level', () => checkWalLevel(server), 'logical'));
    const role = report.add(attempt('replication privilege', () => checkRole(server), privilegeDetail(server)));
    if (role.status === 'ok') report.add(await checkReplicationConnection(config.url, target));
    for (const r of await checkRoom(client, server, slot)) report.add(r);
    const filters = server.versionNum >= ROW_FILTER_VERSION;
    report.add(
      ok(
        'row filters, column lists',
        filters
          ? `supported (Postgres 15+): a table's where is the publication's row filter, and include/exclude its column list, so left-out rows and columns never leave the database`
          : `not supported before Postgres 15: where is refused; columns left out by include/exclude are sent by the server and dropped by tidewire`,
      ),
    );
    const tables: TableInfo[] = [];
    const specs: TableSpec[] = [];
    for (let i = 0; i < config.tables.length; i++) {
      const info = await loadTable(client, parseTableName(config.tables[i].table), server.versionNum);
      const { result, spec } = checkOneTable(config, i, info, server);
      report.add(result);
      if (info && info.relkind === 'r') tables.push(info);
      if (spec) {
        specs.push(spec);
        if (spec.mapping.where !== undefined) report.add(await checkWhere(client, spec, server));
      }
    }
    const perTable = attempt('one where per table', () => checkOneFilterPerTable(specs), '');
    if (perTable.status === 'fail') report.add(perTable);
    report.add(await checkPublication(client, publication, tables, server, specs));
    report.add(await checkSlot(client, slot, server));
  } catch (err) {
    report.add(fail('postgres', `a check query failed: ${errorMessage(err)}`));
  } finally {
    await closeClient(client);
  }
}

/** Runs a preflight check that throws what to fix; passes with `detail`. */
function attempt(name: string, check: () => void, detail: string): CheckResult {
  try {
    check();
    return ok(name, detail);
  } catch (err) {
    if (!(err instanceof TidewireError)) throw err;
    return fail(name, err.message);
  }
}

function privilegeDetail(s: ServerInfo): string {
  if (s.isSuperuser) return `role "${s.role}" is a superuser`;
  if (s.hasReplication) return `role "${s.role}" has REPLICATION`;
  return `role "${s.role}" is a member of rds_replication`;
}

/** The connector streams over a replication connection, which pg_hba.conf allows separately. */
async function checkReplicationConnection(url: string, target: string): Promise<CheckResult> {
  let repl: pg.Client | null = null;
  try {
    repl = await openClient(clientConfig(url, 'replication'), target, silent);
    await repl.query('IDENTIFY_SYSTEM');
    return ok('replication connection', 'accepted');
  } catch (err) {
    return fail('replication connection', errorMessage(err));
  } finally {
    await closeClient(repl);
  }
}

/** A run needs one slot (unless its own already exists: it is dropped and re-created) and one WAL sender. */
async function checkRoom(client: pg.Client, server: ServerInfo, slot: string): Promise<CheckResult[]> {
  const limits = attempt('replication limits', () => checkReplicationLimits(server), '');
  if (limits.status === 'fail') return [limits];
  const usage = await readReplicationUsage(client);
  const own = (await readSlots(client, slot)).length;
  const slotsNeeded = own > 0 ? 0 : 1;
  const results: CheckResult[] = [];
  const slotsUsed = `${usage.slots} of ${server.maxReplicationSlots} in use`;
  results.push(
    usage.slots + slotsNeeded <= server.maxReplicationSlots
      ? ok('max_replication_slots', `${slotsUsed}${own > 0 ? ` (one is tidewire's "${slot}")` : '; tidewire needs 1 more'}`)
      : fail(
          'max_replication_slots',
          `${slotsUsed} and tidewire needs 1 more: raise max_replication_slots in postgresql.conf and restart Postgres, or drop an unused slot (list them with tidewire slots --all --url <url>; tidewire slots --drop <name>)`,
        ),
  );
  const sendersUsed = `${usage.walSenders} of ${server.maxWalSenders} in use`;
  results.push(
    usage.walSenders + 1 <= server.maxWalSenders
      ? ok('max_wal_senders', `${sendersUsed}; tidewire needs 1 more`)
      : fail('max_wal_senders', `${sendersUsed} and tidewire needs 1 more: raise max_wal_senders in postgresql.conf and restart Postgres, or stop a replication client`),
  );
  return results;
}

/**
 * The connector's checkTable stops at the first problem. A missing SELECT grant is checked before
 * the columns and the key, so when it is the problem the rest is checked too (as if granted):
 * one run then lists every fix the table needs.
 */
function checkOneTable(config: PostgresConfig, index: number, info: TableInfo | null, server: ServerInfo): { result: CheckResult; spec?: TableSpec } {
  const mapping = config.tables[index];
  const name = `table ${qualifiedName(parseTableName(mapping.table))}`;
  const problems: string[] = [];
  let table = info;
  for (;;) {
    try {
      const spec = checkTable(mapping, index, table, server);
      if (problems.length > 0) return { result: fail(name, problems.join('; ')) };
      const rows = spec.table.rowEstimate > 0 ? `, about ${Math.round(spec.table.rowEstimate)} rows` : '';
      return { result: ok(name, `key (${spec.keyColumns.join(', ')}), readable, path ${mapping.path} matches its columns${rows}`), spec };
    } catch (err) {
      if (!(err instanceof TidewireError)) throw err;
      problems.push(err.message);
      if (err.code !== 'PG_PERMISSION_DENIED' || !table || table.canSelect) return { result: fail(name, problems.join('; ')) };
      table = { ...table, canSelect: true };
    }
  }
}

/** The server parses the table's where and tries it as a row filter; its columns must be in the replica identity. */
async function checkWhere(client: pg.Client, spec: TableSpec, server: ServerInfo): Promise<CheckResult> {
  const label = `where of postgres.tables.${spec.index}`;
  const where = spec.mapping.where!;
  const filter = server.versionNum >= ROW_FILTER_VERSION ? await loadRowFilter(client, spec.table, where, server.versionNum) : ({ ok: true, columns: [], publicationError: null } as const);
  const result = attempt(label, () => checkRowFilter(spec, filter, server.versionNum), '');
  if (result.status === 'fail' || !filter.ok) return result;
  const tried = filter.publicationError === undefined ? `; role "${server.role}" cannot create publications on ${qualifiedName(spec.table)}, so Postgres's row-filter rules are checked at start` : '';
  return ok(label, `(${where}) reads ${filter.columns.join(', ') || 'no column'}, covered by the replica identity; the publication's row filter and the snapshot's WHERE${tried}`);
}

interface PublicationRow {
  oid: number;
  puballtables: boolean;
  publish: string;
  owned: boolean;
}

async function checkPublication(client: pg.Client, name: string, tables: readonly TableInfo[], server: ServerInfo, specs: readonly TableSpec[]): Promise<CheckResult> {
  const label = `publication ${name}`;
  const wanted = [...new Map(tables.map((t) => [qualifiedName(t), t])).values()];
  const wantedPublish = server.versionNum >= 110000 ? 'insert, update, delete, truncate' : 'insert, update, delete';
  // Tables that passed their checks with their column lists and row filters; the others by name.
  const entries = publishedTables(specs, server.versionNum);
  const entry = new Map(entries.map((e) => [qualifiedName(e.table), publicationEntry(e)]));
  const tableList = wanted.map((t) => entry.get(qualifiedName(t)) ?? quoteTable(t)).join(', ');
  const lists = entries.filter((e) => e.columns !== null).map((e) => `${qualifiedName(e.table)} (${e.columns!.join(', ')})`);
  const shaped = lists.length > 0 ? `; column lists ${lists.join(', ')}: the other columns never leave the database` : '';
  const ident = pg.escapeIdentifier(name);
  const truncate = server.versionNum >= 110000 ? 'pubtruncate' : 'false';
  const { rows } = await client.query<PublicationRow>(
    `SELECT oid::int AS oid, puballtables, pg_has_role(pubowner, 'USAGE') AS owned,
            concat_ws(', ', CASE WHEN pubinsert THEN 'insert' END, CASE WHEN pubupdate THEN 'update' END,
                            CASE WHEN pubdelete THEN 'delete' END, CASE WHEN ${truncate} THEN 'truncate' END) AS publish
       FROM pg_publication WHERE pubname = $1`,
    [name],
  );
  const ownsTables = await ownsAll(client, wanted);
  const create = `CREATE PUBLICATION ${ident} FOR TABLE ${tableList} WITH (publish = '${wantedPublish}')`;
  if (rows.length === 0) {
    const { rows: db } = await client.query<{ can_create: boolean }>(`SELECT has_database_privilege(current_database(), 'CREATE') AS can_create`);
    if (server.isSuperuser || (db[0].can_create && ownsTables)) return ok(label, `does not exist yet; tidewire creates it at start for ${wanted.map(qualifiedName).join(', ') || 'the configured tables'}${shaped}`);
    return fail(
      label,
      `does not exist, and role "${server.role}" cannot create it (that needs CREATE on database "${server.database}" and ownership of the tables): have the table owner run ${create}; tidewire then uses it as is`,
    );
  }
  const pub = rows[0];
  if (pub.puballtables) return ok(label, 'is FOR ALL TABLES; tidewire uses it as is');
  const { rows: have } = await client.query<{ name: string }>(`SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [name]);
  const haveSet = new Set(have.map((r) => r.name));
  const missing = wanted.map(qualifiedName).filter((t) => !haveSet.has(t));
  const extra = [...haveSet].filter((t) => !wanted.some((w) => qualifiedName(w) === t));
  // Since Postgres 15: column lists and row filters as the mappings want them (whether a row
  // filter is the configured where, only the start can tell: it compares what the server deparses).
  const reshape = server.versionNum >= ROW_FILTER_VERSION && missing.length === 0 && extra.length === 0 && specs.length > 0 && !sameShape(await describePublication(client, pub.oid), entries);
  if (missing.length === 0 && extra.length === 0 && !reshape && pub.publish === wantedPublish) return ok(label, `publishes exactly the configured tables (${pub.publish})${shaped}`);
  const differences = [
    missing.length > 0 ? `lacks ${missing.join(', ')}` : '',
    extra.length > 0 ? `also has ${extra.join(', ')}` : '',
    reshape ? 'its column lists or row filters differ from the mappings' : '',
    pub.publish !== wantedPublish ? `publishes ${pub.publish || 'nothing'} instead of ${wantedPublish}` : '',
  ].filter(Boolean).join(', ');
  if (server.isSuperuser || (pub.owned && ownsTables)) return ok(label, `${differences}; tidewire alters it at start to exactly the configured tables${shaped}`);
  return fail(
    label,
    `${differences}, and role "${server.role}" cannot alter it (that needs ownership of the publication and the tables): as its owner run ALTER PUBLICATION ${ident} SET TABLE ${tableList}; ALTER PUBLICATION ${ident} SET (publish = '${wantedPublish}')`,
  );
}

async function ownsAll(client: pg.Client, tables: readonly TableInfo[]): Promise<boolean> {
  if (tables.length === 0) return true;
  const { rows } = await client.query<{ owned: boolean }>(`SELECT bool_and(pg_has_role(relowner, 'USAGE')) AS owned FROM pg_class WHERE oid = ANY($1::oid[])`, [
    tables.map((t) => t.oid),
  ]);
  return rows[0].owned === true;
}

async function checkSlot(client: pg.Client, slot: string, server: ServerInfo): Promise<CheckResult> {
  const label = `slot ${slot}`;
  const [s] = await readSlots(client, slot);
  if (!s) return ok(label, 'does not exist yet; tidewire creates it at start');
  if (s.slotType !== 'logical' || s.database !== server.database || s.plugin !== 'pgoutput') {
    return fail(
      label,
      `exists but is not tidewire's (${s.slotType} slot, database ${s.database ?? '-'}, plugin ${s.plugin ?? '-'}): set postgres.slot to another name`,
    );
  }
  const lag = s.lagBytes === null ? '' : `, ${formatBytes(s.lagBytes)} behind`;
  if (s.active) {
    const who = isTidewireSlot(s, slot) && s.applicationName ? ` (${s.applicationName})` : '';
    return fail(
      label,
      `is in use by process ${s.activePid}${who}${lag}: another tidewire is probably running with postgres.slot "${slot}". Stop it, or give this one another slot name; if that process is stale, end it with SELECT pg_terminate_backend(${s.activePid})`,
    );
  }
  if (s.lagBytes !== null && s.lagBytes > 1024 ** 3) {
    return warn(label, `exists, inactive${lag}: it holds that much WAL on the server until tidewire starts (and re-creates it) or it is dropped (tidewire slots --drop ${slot})`);
  }
  return ok(label, `exists, inactive${lag}; tidewire drops and re-creates it at start (a fresh snapshot)`);
}

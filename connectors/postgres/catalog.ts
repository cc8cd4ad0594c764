/**
 * What the connector reads from the Postgres catalog: server settings, the role's privileges and
 * each configured table's columns, key and replica identity. Checking them is preflight.ts.
 */
import pg from 'pg';

/** The one thing catalog readers need of a connection. */
export type CatalogQuery = Pick<pg.ClientBase, 'query'>;

export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

export interface ServerInfo {
  readonly versionNum: number;
  readonly walLevel: string;
  readonly maxReplicationSlots: number;
  readonly maxWalSenders: number;
  readonly role: string;
  readonly isSuperuser: boolean;
  readonly hasReplication: boolean;
  /** Member of rds_replication (Amazon RDS / Aurora grant replication this way). */
  readonly hasCloudReplicationRole: boolean;
  readonly database: string;
}

export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

export interface ColumnInfo {
  readonly name: string;
  readonly typeOid: number;
  /** Generated columns are not sent by pgoutput (before Postgres 18), so they are never mapped. */
  readonly generated: boolean;
}

export interface TableInfo extends QualifiedName {
  readonly oid: number;
  /** pg_class.relkind: r table, p partitioned table, v view, m materialized view, f foreign table. */
  readonly relkind: string;
  readonly replicaIdentity: ReplicaIdentity;
  readonly columns: readonly ColumnInfo[];
  readonly primaryKey: readonly string[] | null;
  /** Columns of the REPLICA IDENTITY USING INDEX index, when set. */
  readonly identityIndex: readonly string[] | null;
  /** pg_class.reltuples; -1 or 0 when never analyzed. */
  readonly rowEstimate: number;
  readonly canSelect: boolean;
}

/** `orders` → public.orders; `sales.orders` → sales.orders. Names are case-sensitive, as stored. */
export function parseTableName(table: string): QualifiedName {
  const dot = table.indexOf('.');
  return dot < 0 ? { schema: 'public', name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

export function qualifiedName(t: QualifiedName): string {
  return `${t.schema}.${t.name}`;
}

/** `"schema"."table"`, quoted for SQL. */
export function quoteTable(t: QualifiedName): string {
  return `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`;
}

interface ServerRow {
  version_num: number;
  wal_level: string;
  max_replication_slots: number;
  max_wal_senders: number;
  role: string;
  rolsuper: boolean;
  rolreplication: boolean;
  rds_replication: boolean;
  database: string;
}

export async function loadServerInfo(client: CatalogQuery): Promise<ServerInfo> {
  const { rows } = await client.query<ServerRow>(`
    SELECT current_setting('server_version_num')::int AS version_num,
           current_setting('wal_level') AS wal_level,
           current_setting('max_replication_slots')::int AS max_replication_slots,
           current_setting('max_wal_senders')::int AS max_wal_senders,
           r.rolname AS role, r.rolsuper, r.rolreplication,
           EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' AND pg_has_role(r.oid, g.oid, 'MEMBER')) AS rds_replication,
           current_database() AS database
      FROM pg_roles r WHERE r.rolname = current_user`);
  const r = rows[0];
  return {
    versionNum: r.version_num,
    walLevel: r.wal_level,
    maxReplicationSlots: r.max_replication_slots,
    maxWalSenders: r.max_wal_senders,
    role: r.role,
    isSuperuser: r.rolsuper,
    hasReplication: r.rolreplication,
    hasCloudReplicationRole: r.rds_replication,
    database: r.database,
  };
}

interface TableRow {
  oid: number;
  relkind: string;
  relreplident: string;
  reltuples: number;
  can_select: boolean;
}

const IDENTITY: Record<string, ReplicaIdentity> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

/** Reads one table's definition; null when it does not exist. */
export async function loadTable(client: CatalogQuery, table: QualifiedName, serverVersionNum: number): Promise<TableInfo | null> {
  const t = await client.query<TableRow>(
    `SELECT c.oid::int AS oid, c.relkind::text AS relkind, c.relreplident::text AS relreplident, c.reltuples::float8 AS reltuples,
            has_table_privilege(c.oid, 'SELECT') AS can_select
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [table.schema, table.name],
  );
  if (t.rows.length === 0) return null;
  const row = t.rows[0];
  const generated = serverVersionNum >= 120000 ? `a.attgenerated <> ''` : 'false';
  const cols = await client.query<{ name: string; type_oid: number; generated: boolean }>(
    `SELECT a.attname AS name, a.atttypid::int AS type_oid, ${generated} AS generated
       FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [row.oid],
  );
  const keys = await client.query<{ indisprimary: boolean; indisreplident: boolean; columns: string[] }>(
    `SELECT i.indisprimary, i.indisreplident,
            ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
       FROM pg_index i WHERE i.indrelid = $1 AND (i.indisprimary OR i.indisreplident)`,
    [row.oid],
  );
  return {
    schema: table.schema,
    name: table.name,
    oid: row.oid,
    relkind: row.relkind,
    replicaIdentity: IDENTITY[row.relreplident] ?? 'default',
    columns: cols.rows.map((c) => ({ name: c.name, typeOid: c.type_oid, generated: c.generated })),
    primaryKey: keys.rows.find((k) => k.indisprimary)?.columns ?? null,
    identityIndex: keys.rows.find((k) => k.indisreplident)?.columns ?? null,
    rowEstimate: Math.max(0, row.reltuples),
    canSelect: row.can_select,
  };
}

/** What the server says of a `where:` expression on one table (loadRowFilter). */
export type RowFilterInfo =
  | { readonly ok: false; readonly error: string }
  | {
      readonly ok: true;
      /** The table's columns the expression reads (from the dependencies the server records). */
      readonly columns: readonly string[];
      /**
       * The server's refusal of the expression as a publication row filter (a user-defined function,
       * a mutable function, a system column, ...); null when it accepted it, undefined when it
       * could not be tried (the role may not create publications on this table).
       */
      readonly publicationError: string | null | undefined;
    };

/**
 * Has the server parse `where` on `table` and say which columns it reads, then try it as a row
 * filter of a throwaway publication (Postgres 15+), all inside a transaction that is rolled back:
 * nothing is left behind. The extended protocol runs exactly one statement, so an expression
 * cannot smuggle in a second one.
 */
export async function loadRowFilter(client: CatalogQuery, table: QualifiedName, where: string, serverVersionNum: number): Promise<RowFilterInfo> {
  const run = (text: string, values?: unknown[]) => client.query({ text, values, queryMode: 'extended' } as pg.QueryConfig);
  await client.query('BEGIN');
  try {
    try {
      await run(`CREATE TEMP VIEW tidewire_where_check AS SELECT 1 AS one FROM ONLY ${quoteTable(table)} WHERE (${where})`);
    } catch (err) {
      return { ok: false, error: errorText(err) };
    }
    const { rows } = await client.query<{ name: string }>(
      `SELECT DISTINCT a.attname::text AS name, a.attnum
         FROM pg_depend d
         JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE r.ev_class = 'pg_temp.tidewire_where_check'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)
          AND d.refobjsubid > 0
        ORDER BY a.attnum`,
      [table.schema, table.name],
    );
    let publicationError: string | null | undefined;
    if (serverVersionNum >= 150000) {
      await client.query('SAVEPOINT tidewire_where_publication');
      try {
        await run(`CREATE PUBLICATION tidewire_where_check FOR TABLE ${quoteTable(table)} WHERE (${where})`);
        publicationError = null;
      } catch (err) {
        // 42501: not the table's owner, or no CREATE on the database; the start tries it for real.
        publicationError = (err as { code?: string }).code === '42501' ? undefined : errorText(err);
      }
      await client.query('ROLLBACK TO SAVEPOINT tidewire_where_publication');
    }
    return { ok: true, columns: rows.map((r) => r.name), publicationError };
  } finally {
    await client.query('ROLLBACK');
  }
}

/** A server error as Postgres states it, with its detail and hint. */
function errorText(err: unknown): string {
  const e = err as { message?: string; detail?: string; hint?: string };
  return [e.message ?? String(err), e.detail, e.hint].filter(Boolean).join('. ');
}

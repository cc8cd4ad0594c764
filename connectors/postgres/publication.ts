/**
 * The publication names what pgoutput sends: exactly the configured tables, with inserts,
 * updates, deletes and truncates. Created when missing, altered when it differs.
 *
 * It must be in place before the slot is created: pgoutput reads the publication through the
 * slot's historic catalog snapshot, so a publication created after the slot's start point is
 * not seen for earlier WAL.
 */
import type { Logger } from 'pino';
import pg from 'pg';
import { type CatalogQuery, type QualifiedName, qualifiedName, quoteTable } from './catalog.ts';
import { PostgresConnectorError, toConnectorError } from './errors.ts';
import { ROW_FILTER_VERSION, type TableSpec } from './preflight.ts';
import { mappedColumnNames } from './table-mapper.ts';

export type PublicationOutcome = 'created' | 'altered' | 'unchanged';

/** One table as the publication should publish it. */
export interface PublishedTable {
  readonly table: QualifiedName;
  /** The column list (Postgres 15+): null publishes every column. */
  readonly columns: readonly string[] | null;
  /** The row filter (Postgres 15+): null publishes every row. */
  readonly where: string | null;
}

/**
 * What the publication publishes for the configured tables. On Postgres 15+ a table whose
 * mappings leave columns out (include/exclude) gets a column list of the columns some mapping
 * reads, so the others never leave the database: path, key and tenant columns are always in it
 * (Postgres needs the replica identity's columns in it too; they are the key). Not with REPLICA
 * IDENTITY FULL, where the whole row is the identity and Postgres refuses UPDATEs unless the
 * list covers it: the mapper alone leaves those columns out then. A mapping's where is the
 * table's row filter (preflight made every mapping of a table carry the same one).
 */
export function publishedTables(specs: readonly TableSpec[], serverVersionNum: number): PublishedTable[] {
  const byTable = new Map<string, TableSpec[]>();
  for (const spec of specs) {
    const name = qualifiedName(spec.table);
    byTable.set(name, [...(byTable.get(name) ?? []), spec]);
  }
  const filters = serverVersionNum >= ROW_FILTER_VERSION;
  return [...byTable.values()].map((list) => {
    const info = list[0].table;
    const read = new Set(list.flatMap(mappedColumnNames));
    const publishable = info.columns.filter((c) => !c.generated).map((c) => c.name);
    const columns = filters && info.replicaIdentity !== 'full' && publishable.some((c) => !read.has(c)) ? publishable.filter((c) => read.has(c)) : null;
    return { table: info, columns, where: filters ? (list[0].mapping.where ?? null) : null };
  });
}

/** `"s"."t" ("a", "b") WHERE (expr)`: one entry of FOR TABLE / SET TABLE. */
export function publicationEntry(t: PublishedTable): string {
  const columns = t.columns ? ` (${t.columns.map((c) => pg.escapeIdentifier(c)).join(', ')})` : '';
  return `${quoteTable(t.table)}${columns}${t.where !== null ? ` WHERE (${t.where})` : ''}`;
}

/** A table as a publication publishes it now (Postgres 15+: pg_publication_rel). */
interface CurrentTable {
  readonly name: string;
  readonly columns: string[] | null;
  readonly rowfilter: string | null;
}

/** The tables of publication `oid` with their column lists and row filters, as the server deparses them. */
export async function describePublication(client: CatalogQuery, oid: number): Promise<{ tables: CurrentTable[]; schemas: boolean }> {
  const { rows } = await client.query<CurrentTable>(
    `SELECT n.nspname || '.' || c.relname AS name, pg_get_expr(pr.prqual, pr.prrelid) AS rowfilter,
            CASE WHEN pr.prattrs IS NULL THEN NULL
                 ELSE ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs) ORDER BY a.attnum) END AS columns
       FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE pr.prpubid = $1 ORDER BY 1`,
    [oid],
  );
  const ns = await client.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_publication_namespace WHERE pnpubid = $1) AS any', [oid]);
  return { tables: rows, schemas: ns.rows[0].any };
}

/**
 * Whether the publication publishes the wanted tables with the wanted column lists, and a row
 * filter exactly where one is wanted. Whether a filter is the wanted one only the server can
 * tell (it stores the expression deparsed): see ensurePublication.
 */
export function sameShape(current: { tables: readonly CurrentTable[]; schemas: boolean }, wanted: readonly PublishedTable[]): boolean {
  if (current.schemas || current.tables.length !== wanted.length) return false;
  const have = new Map(current.tables.map((t) => [t.name, t]));
  return wanted.every((w) => {
    const h = have.get(qualifiedName(w.table));
    if (!h || (h.rowfilter === null) !== (w.where === null)) return false;
    if (h.columns === null || w.columns === null) return h.columns === w.columns;
    return h.columns.length === w.columns.length && w.columns.every((c) => h.columns!.includes(c));
  });
}

interface PublicationRow {
  oid: number;
  puballtables: boolean;
  publish: string;
}

export async function ensurePublication(
  client: CatalogQuery,
  options: { name: string; tables: readonly TableSpec[]; serverVersionNum: number; log: Logger; target: string },
): Promise<PublicationOutcome> {
  const { name, serverVersionNum, log } = options;
  const filters = serverVersionNum >= ROW_FILTER_VERSION;
  const wanted = publishedTables(options.tables, serverVersionNum);
  const tables = dedupe(wanted.map((w) => w.table));
  const wantedPublish = serverVersionNum >= 110000 ? 'insert, update, delete, truncate' : 'insert, update, delete';
  const tableList = wanted.map(publicationEntry).join(', ');
  const ident = pg.escapeIdentifier(name);
  const truncateColumn = serverVersionNum >= 110000 ? 'pubtruncate' : 'false';
  const described = () =>
    wanted.map((w) => ({ table: qualifiedName(w.table), ...(w.columns ? { columns: w.columns } : {}), ...(w.where !== null ? { where: w.where } : {}) }));
  try {
    const existing = await client.query<PublicationRow>(
      `SELECT oid::int AS oid, puballtables,
              concat_ws(', ', CASE WHEN pubinsert THEN 'insert' END, CASE WHEN pubupdate THEN 'update' END,
                              CASE WHEN pubdelete THEN 'delete' END, CASE WHEN ${truncateColumn} THEN 'truncate' END) AS publish
         FROM pg_publication WHERE pubname = $1`,
      [name],
    );
    if (existing.rows.length === 0) {
      await client.query(`CREATE PUBLICATION ${ident} FOR TABLE ${tableList} WITH (publish = '${wantedPublish}')`);
      log.info({ publication: name, tables: described() }, 'created publication');
      return 'created';
    }
    const pub = existing.rows[0];
    let outcome: PublicationOutcome = 'unchanged';
    if (pub.publish !== wantedPublish) {
      await client.query(`ALTER PUBLICATION ${ident} SET (publish = '${wantedPublish}')`);
      log.warn({ publication: name, was: pub.publish, now: wantedPublish }, 'altered publication: it did not publish every kind of change');
      outcome = 'altered';
    }
    if (pub.puballtables) {
      // SET TABLE is not allowed on FOR ALL TABLES; extra tables are simply ignored when streaming.
      log.warn({ publication: name }, 'publication is FOR ALL TABLES: using it as is; changes of unconfigured tables are decoded and ignored');
      return outcome;
    }
    const alter = `ALTER PUBLICATION ${ident} SET TABLE ${tableList}`;
    if (!filters) {
      const current = await client.query<{ schemaname: string; tablename: string }>('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [name]);
      const have = new Set(current.rows.map((r) => `${r.schemaname}.${r.tablename}`));
      const want = new Set(tables.map(qualifiedName));
      if (have.size === want.size && [...want].every((t) => have.has(t))) return outcome;
      await client.query(alter);
      log.warn({ publication: name, was: [...have].sort(), now: [...want].sort() }, 'altered publication to publish exactly the configured tables');
      return 'altered';
    }
    // Since Postgres 15 a publication can filter rows or columns, or publish whole schemas: any
    // difference from what the mappings want would drop data (or send what should stay), so it
    // counts as a difference too.
    const before = await describePublication(client, pub.oid);
    if (!sameShape(before, wanted)) {
      await client.query(alter);
      log.warn({ publication: name, was: before.tables, now: described() }, 'altered publication to publish exactly the configured tables, columns and rows');
      return 'altered';
    }
    if (wanted.every((w) => w.where === null)) return outcome;
    // The row filters are stored deparsed: set the wanted ones inside a transaction and compare
    // what the server made of them; unchanged, it is rolled back and the publication is untouched.
    await client.query('BEGIN');
    try {
      await client.query(alter);
      const after = await describePublication(client, pub.oid);
      const same = after.tables.every((t) => before.tables.some((b) => b.name === t.name && b.rowfilter === t.rowfilter));
      if (same) {
        await client.query('ROLLBACK');
        return outcome;
      }
      await client.query('COMMIT');
      log.warn({ publication: name, was: before.tables, now: after.tables }, 'altered publication: its row filters differed from the configured where');
      return 'altered';
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      if ((err as { code?: string }).code !== '42501') throw err;
      log.warn({ publication: name, tables: before.tables }, 'cannot tell whether the publication\'s row filters are the configured where (altering it needs ownership of its tables): using it as is');
      return outcome;
    }
  } catch (err) {
    const e = toConnectorError(err, `setting up publication "${name}"`, options.target);
    if (e.code !== 'PG_PERMISSION_DENIED') throw e;
    throw new PostgresConnectorError(
      'PG_PERMISSION_DENIED',
      `${e.message}. Creating or altering a publication needs ownership of its tables (or superuser): have the table owner run CREATE PUBLICATION ${ident} FOR TABLE ${tableList} WITH (publish = '${wantedPublish}'); tidewire then uses it as is`,
      { cause: err },
    );
  }
}

function dedupe(tables: readonly QualifiedName[]): QualifiedName[] {
  const seen = new Map<string, QualifiedName>();
  for (const t of tables) seen.set(qualifiedName(t), t);
  return [...seen.values()];
}

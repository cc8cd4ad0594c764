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

export type PublicationOutcome = 'created' | 'altered' | 'unchanged';

interface PublicationRow {
  oid: number;
  puballtables: boolean;
  publish: string;
}

export async function ensurePublication(
  client: CatalogQuery,
  options: { name: string; tables: readonly QualifiedName[]; serverVersionNum: number; log: Logger; target: string },
): Promise<PublicationOutcome> {
  const { name, serverVersionNum, log } = options;
  const tables = dedupe(options.tables);
  const wantedPublish = serverVersionNum >= 110000 ? 'insert, update, delete, truncate' : 'insert, update, delete';
  const tableList = tables.map(quoteTable).join(', ');
  const ident = pg.escapeIdentifier(name);
  const truncateColumn = serverVersionNum >= 110000 ? 'pubtruncate' : 'false';
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
      log.info({ publication: name, tables: tables.map(qualifiedName) }, 'created publication');
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
    const current = await client.query<{ schemaname: string; tablename: string }>(
      'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
      [name],
    );
    const have = new Set(current.rows.map((r) => `${r.schemaname}.${r.tablename}`));
    const want = new Set(tables.map(qualifiedName));
    const sameTables = have.size === want.size && [...want].every((t) => have.has(t));
    // Since Postgres 15 a publication can filter rows or columns, or publish whole schemas;
    // any of those would silently drop data, so it counts as a difference too.
    const filtered =
      serverVersionNum >= 150000 &&
      (
        await client.query<{ filtered: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM pg_publication_rel WHERE prpubid = $1 AND (prqual IS NOT NULL OR prattrs IS NOT NULL))
               OR EXISTS (SELECT 1 FROM pg_publication_namespace WHERE pnpubid = $1) AS filtered`,
          [pub.oid],
        )
      ).rows[0].filtered;
    if (!sameTables || filtered) {
      await client.query(`ALTER PUBLICATION ${ident} SET TABLE ${tableList}`);
      log.warn({ publication: name, was: [...have].sort(), now: [...want].sort(), filtered }, 'altered publication to publish exactly the configured tables');
      outcome = 'altered';
    }
    return outcome;
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

/**
 * `tidewire slots`: tidewire's replication slots on a server, with the WAL each holds back, and
 * `--drop <name>` to remove one that is no longer wanted (an inactive slot keeps WAL on the server
 * forever). An active slot is never dropped: the process streaming from it is named instead.
 */
import type pg from 'pg';
import { pino } from 'pino';
import { type SlotStatus, clientConfig, closeClient, describeTarget, isTidewireSlot, openClient, readSlots } from '../../connectors/postgres/index.ts';
import { loadConfigFile } from '../config/config.ts';
import { TidewireError } from '../../core/errors.ts';
import { formatBytes } from './format.ts';

export interface SlotsOptions {
  config?: string;
  url?: string;
  drop?: string;
  /** Every slot of the server, not only tidewire's. */
  all?: boolean;
  json?: boolean;
}

export async function slotsCommand(opts: SlotsOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  let url = opts.url;
  let configured: string | undefined;
  let publication: string | undefined;
  if (url === undefined && opts.config !== undefined) {
    const config = loadConfigFile(opts.config);
    if (!config.postgres) throw new TidewireError('USAGE', `${opts.config} has no postgres section: pass --url <postgres url> instead`);
    url = config.postgres.url;
    configured = config.postgres.slot ?? 'tidewire';
    publication = config.postgres.publication ?? 'tidewire';
  }
  url ??= process.env.TIDEWIRE_DATABASE_URL || undefined;
  if (url === undefined) throw new TidewireError('USAGE', 'slots needs --config <file> or --url <postgres url> (or TIDEWIRE_DATABASE_URL)');
  const target = describeTarget(url);
  const client = await openClient(clientConfig(url, 'query'), target, pino({ level: 'silent' }));
  try {
    if (opts.drop !== undefined) return await drop(client, opts.drop, configured === opts.drop ? publication : undefined, target, out);
    const slots = (await readSlots(client)).filter((s) => opts.all || isTidewireSlot(s, configured));
    if (opts.json) out.write(`${JSON.stringify(slots, null, 2)}\n`);
    else out.write(slots.length === 0 ? `no ${opts.all ? '' : "tidewire "}replication slots on ${target}${opts.all ? '' : ' (--all lists every slot)'}\n` : table(slots));
    return 0;
  } finally {
    await closeClient(client);
  }
}

/**
 * Drops slot `name`. Its publication (`publication`, the configuration's for its own slot; else
 * one of the slot's name, as tidewire names both alike by default) holds no WAL and is left in
 * place: the output says so, and how to drop it once no tidewire uses it.
 */
async function drop(client: pg.Client, name: string, publication: string | undefined, target: string, out: NodeJS.WritableStream): Promise<number> {
  const [slot] = await readSlots(client, name);
  if (!slot) throw new TidewireError('SLOT_MISSING', `${target} has no replication slot named "${name}" (tidewire slots --all lists them)`);
  if (slot.slotType !== 'logical' || slot.plugin !== 'pgoutput') {
    throw new TidewireError('SLOT_NOT_TIDEWIRE', `slot "${name}" is a ${slot.slotType} slot${slot.plugin ? ` of plugin ${slot.plugin}` : ''}, not one of tidewire's: tidewire drops only its own (logical, pgoutput); drop it with SQL if you mean to`);
  }
  if (slot.active) throw activeSlot(slot);
  try {
    await client.query('SELECT pg_drop_replication_slot($1)', [name]);
  } catch (err) {
    // Taken between our read and the drop.
    if ((err as { code?: string }).code === '55006') throw activeSlot((await readSlots(client, name))[0] ?? slot);
    throw err;
  }
  out.write(`dropped replication slot "${name}" (it held ${slot.lagBytes === null ? 'an unknown amount of' : formatBytes(slot.lagBytes)} WAL); the next tidewire start with it creates it again, with a fresh snapshot\n`);
  out.write(`${await publicationNote(client, publication ?? name, publication !== undefined)}\n`);
  return 0;
}

/** What dropping the slot did with the publication: nothing, said plainly. */
async function publicationNote(client: pg.Client, publication: string, configured: boolean): Promise<string> {
  const { rows } = await client.query<{ tables: string }>(
    'SELECT count(pt.*)::text AS tables FROM pg_publication p LEFT JOIN pg_publication_tables pt ON pt.pubname = p.pubname WHERE p.pubname = $1 GROUP BY p.pubname',
    [publication],
  );
  const which = configured ? `the configured publication "${publication}"` : `publication "${publication}" (the slot's name)`;
  if (rows.length === 0) return `no ${which} exists: nothing else to drop${configured ? '' : ' (--config names the publication of a configuration)'}`;
  return `${which} was left in place (${rows[0].tables} table(s); a publication holds no WAL, and tidewire start reuses it): once no tidewire uses it, DROP PUBLICATION ${client.escapeIdentifier(publication)} removes it`;
}

function activeSlot(s: SlotStatus): TidewireError {
  const pid = s.activePid ?? '?';
  return new TidewireError(
    'SLOT_ACTIVE',
    `slot "${s.name}" is active: process ${pid}${s.applicationName ? ` (${s.applicationName})` : ''} streams from it. Stop the tidewire using it first; if that process is stale, end it with SELECT pg_terminate_backend(${pid}) and drop again`,
  );
}

function table(slots: readonly SlotStatus[]): string {
  const rows = [
    ['SLOT', 'ACTIVE', 'PID', 'RESTART_LSN', 'CONFIRMED_LSN', 'LAG_BYTES', 'LAG'],
    ...slots.map((s) => [
      s.name,
      s.active ? 'yes' : 'no',
      s.activePid === null ? '-' : String(s.activePid),
      s.restartLsn ?? '-',
      s.confirmedFlushLsn ?? '-',
      s.lagBytes === null ? '-' : String(s.lagBytes),
      s.lagBytes === null ? '-' : formatBytes(s.lagBytes),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

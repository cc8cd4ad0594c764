/**
 * pgoutput decoding that leaves values as the text Postgres sent.
 *
 * pg-logical-replication's parser converts each value with pg's global type parsers: timestamps
 * become JS Dates (microseconds and offset lost), int8 and numeric lose digits, and the result
 * differs from what the snapshot reads. This parser gives every Relation column an identity
 * parser instead, so tuples carry raw text (or null, or undefined for an unchanged TOAST value)
 * and pgoutput-values.ts converts them exactly as it converts snapshot rows.
 */
import type { Client } from 'pg';
import { type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
// Not re-exported from the package root; the deep path is stable in 2.x (dist is the package).
import { PgoutputParser } from 'pg-logical-replication/dist/output-plugins/pgoutput/pgoutput-parser.js';

const rawText = (text: unknown) => text;

/**
 * A message the parser could not read. Returned rather than thrown: parse() runs inside pg's
 * socket data handler, where a throw would take the whole process down.
 */
export interface ParseFailure {
  readonly tag: 'parse-failure';
  readonly error: unknown;
}

export type PgoutputMessage = Pgoutput.Message | ParseFailure;

export class RawTextPgoutputParser extends PgoutputParser {
  override parse(buf: Buffer): Pgoutput.Message {
    const msg = super.parse(buf);
    // The parser caches this same relation object and reads later tuples through its columns.
    if (msg.tag === 'relation') for (const column of msg.columns) column.parser = rawText;
    return msg;
  }
}

/** Throws as the package's reader does when the message ends before `n` more bytes at `p`. */
function need(b: Buffer, p: number, n: number): void {
  if (b.length < p + n) throw new Error('unexpected end of message');
}

/** The package's BinaryReader, as readTuple sees it (plain JS fields). */
interface Reader {
  _b: Buffer;
  _p: number;
}

/**
 * The package's readTuple, reading text values with one Buffer#toString each instead of a
 * subarray plus TextDecoder#decode (that pair was ~15% of ingest CPU in the ingest profile),
 * and giving our raw-text columns their text without a parser call. Same results, same errors on
 * a short message. Installed on our subclass's prototype: the package declares readTuple private
 * (pinned to pg-logical-replication 2.x, whose parser calls this.readTuple for every tuple).
 */
function readTuple(reader: Reader, relation: { columns: Array<{ name: string; parser: (raw: unknown) => unknown }> }, unchangedToastFallback?: Record<string, unknown> | null) {
  const b = reader._b;
  let p = reader._p;
  need(b, p, 2);
  const nfields = b.readInt16BE(p);
  p += 2;
  const { columns } = relation;
  const tuple: Record<string, unknown> = Object.create(null);
  for (let i = 0; i < nfields; i++) {
    const column = columns[i];
    if (column === undefined) throw new Error(`tuple has ${nfields} columns, the relation ${columns.length}`);
    need(b, p, 1);
    const kind = b[p++];
    switch (kind) {
      case 0x74: {
        // 't' text
        need(b, p, 4);
        const size = b.readInt32BE(p);
        p += 4;
        need(b, p, size);
        const text = b.toString('utf8', p, p + size);
        p += size;
        tuple[column.name] = column.parser === rawText ? text : column.parser(text);
        break;
      }
      case 0x6e: // 'n' null
        tuple[column.name] = null;
        break;
      case 0x75: // 'u' unchanged TOAST datum
        tuple[column.name] = unchangedToastFallback?.[column.name];
        break;
      case 0x62: {
        // 'b' binary (not requested by us; kept as the package does)
        need(b, p, 4);
        const size = b.readInt32BE(p);
        p += 4;
        need(b, p, size);
        tuple[column.name] = b.subarray(p, p + size);
        p += size;
        break;
      }
      default:
        throw new Error(`unknown attribute kind ${String.fromCharCode(kind)}`);
    }
  }
  reader._p = p;
  return tuple;
}
(RawTextPgoutputParser.prototype as unknown as { readTuple: typeof readTuple }).readTuple = readTuple;

export class RawTextPgoutputPlugin extends PgoutputPlugin {
  private readonly rawParser = new RawTextPgoutputParser();

  /** @param onStart receives the replication client just before START_REPLICATION is sent. */
  constructor(
    options: Pgoutput.Options,
    private readonly onStart: (client: Client) => void,
  ) {
    super(options);
  }

  override parse(buffer: Buffer): Pgoutput.Message {
    try {
      return this.rawParser.parse(buffer);
    } catch (error) {
      const failure: ParseFailure = { tag: 'parse-failure', error };
      return failure as unknown as Pgoutput.Message;
    }
  }

  override start(client: Client, slotName: string, lastLsn: string): Promise<unknown> {
    this.onStart(client);
    return super.start(client, slotName, lastLsn);
  }
}

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

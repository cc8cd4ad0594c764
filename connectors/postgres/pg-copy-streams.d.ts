// Types for the part of pg-copy-streams 7.x we use (the package ships none).
declare module 'pg-copy-streams' {
  import type { Duplex, DuplexOptions } from 'node:stream';
  import type { Submittable } from 'pg';

  export interface CopyBothOptions extends DuplexOptions {
    /** Push each CopyData message's payload as one chunk (replication needs the boundaries). */
    alignOnCopyDataFrame?: boolean;
  }

  /** A COPY ... or START_REPLICATION in CopyBoth mode: read CopyData payloads, write CopyData messages. */
  export interface CopyBothQueryStream extends Duplex, Submittable {}

  export function both(text: string, options?: CopyBothOptions): CopyBothQueryStream;
}

/**
 * The Standby Status Update message ('r') a replication client sends to report its position.
 * https://www.postgresql.org/docs/current/protocol-replication.html
 *
 * The LSN is reported as is, never + 1 (pg-logical-replication's acknowledge() added 1): Postgres
 * resumes a logical slot from the first transaction whose commit record starts at or after
 * confirmed_flush_lsn, so reporting commit-end + 1 could skip a transaction whose commit record
 * starts exactly at the previous commit's end. Postgres's own subscriber reports the commit's end
 * LSN as is; so do we.
 */
import type { Lsn } from './lsn.ts';

/** Microseconds between the Unix epoch and the Postgres epoch (2000-01-01 UTC). */
export const PG_EPOCH_US = 946_684_800_000_000n;

/**
 * @param lsn written, flushed and applied position: everything before it is durably handled
 * @param replyRequested ask the server to answer with a keepalive at once (a liveness probe)
 */
export function encodeStandbyStatus(lsn: Lsn, nowMs: number, replyRequested: boolean): Buffer {
  const buf = Buffer.alloc(34);
  buf[0] = 0x72; // 'r'
  buf.writeBigUInt64BE(lsn, 1); // written
  buf.writeBigUInt64BE(lsn, 9); // flushed
  buf.writeBigUInt64BE(lsn, 17); // applied
  buf.writeBigInt64BE(BigInt(nowMs) * 1000n - PG_EPOCH_US, 25);
  buf[33] = replyRequested ? 1 : 0;
  return buf;
}

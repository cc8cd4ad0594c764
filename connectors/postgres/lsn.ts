/**
 * Log sequence numbers. Postgres prints an LSN as two hex halves, `16/B374D848`, other tools
 * zero-pad them (`00000016/B374D848`), and as strings `9/0` sorts after `10/0`, so LSNs are never
 * compared as strings: they are parsed into one 64-bit BigInt (hi << 32 | lo).
 */

export type Lsn = bigint;

/** Parses `X/Y` (hex halves); throws on anything else. */
export function parseLsn(text: string): Lsn {
  const slash = text.indexOf('/');
  const hi = slash > 0 ? Number.parseInt(text.slice(0, slash), 16) : Number.NaN;
  const lo = slash > 0 ? Number.parseInt(text.slice(slash + 1), 16) : Number.NaN;
  if (!Number.isInteger(hi) || !Number.isInteger(lo) || hi > 0xffffffff || lo > 0xffffffff) {
    throw new TypeError(`not an LSN: ${JSON.stringify(text)}`);
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Formats as Postgres does: upper-case hex halves without padding. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}

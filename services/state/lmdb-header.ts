/**
 * Checks an LMDB data file's two meta pages before lmdb sees it: lmdb-js 3.5 crashes the process
 * (SIGSEGV) on a file that is not LMDB, and a file shorter than its last transaction's pages
 * faults (SIGBUS) on the first read past its end. Both must be a clear error instead.
 *
 * Layout (liblmdb mdb.c, 64-bit builds): each meta page starts with a 24-byte page header
 * (pgno u64, txnid u64, pad u16, flags u16 with P_META = 0x08, lower/upper u16), then MDB_meta:
 * magic u32 0xBEEFC0DE, version u32 (2), address u64, mapsize u64, two MDB_db of 48 bytes (free
 * space, main; the first's md_pad is the page size), last_pg u64, txnid u64. Page 0 and page 1
 * hold the two metas; the one with the higher txnid is current.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MAGIC = 0xbeefc0de;
const DATA_VERSION = 2;
const P_META = 0x08;
const HEADER = 24;
const META_BYTES = HEADER + 0x88;
const P_INVALID = 0xffffffffffffffffn;

export type HeaderCheck = { readonly ok: true; readonly empty: boolean } | { readonly ok: false; readonly problem: string };

interface Meta {
  readonly pageSize: number;
  readonly lastPage: bigint;
  readonly txnid: bigint;
  readonly roots: readonly bigint[];
}

function readMeta(b: Buffer): Meta | string {
  if (b.readUInt32LE(HEADER) !== MAGIC) return 'it is not an LMDB file (no LMDB magic number)';
  if ((b.readUInt16LE(0x12) & P_META) === 0) return 'a meta page is not marked as one';
  const version = b.readUInt32LE(HEADER + 4) & 0xffff;
  if (version !== DATA_VERSION) return `its LMDB data version is ${version}, not ${DATA_VERSION}`;
  const dbs = HEADER + 0x18;
  return {
    pageSize: b.readUInt32LE(dbs),
    roots: [b.readBigUInt64LE(dbs + 40), b.readBigUInt64LE(dbs + 48 + 40)],
    lastPage: b.readBigUInt64LE(dbs + 96),
    txnid: b.readBigUInt64LE(dbs + 104),
  };
}

/** Reads only the first two pages of `file`; never throws for what the file holds. */
export function checkLmdbHeader(file: string): HeaderCheck {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return { ok: true, empty: true };
    const read = (offset: number): Buffer | null => {
      const b = Buffer.alloc(META_BYTES);
      return readSync(fd, b, 0, META_BYTES, offset) === META_BYTES ? b : null;
    };
    const first = read(0);
    if (!first) return { ok: false, problem: `it is ${size} bytes, too short for an LMDB file` };
    const m0 = readMeta(first);
    if (typeof m0 === 'string') return { ok: false, problem: m0 };
    const ps = m0.pageSize;
    if (ps < 512 || ps > 65536 || (ps & (ps - 1)) !== 0) return { ok: false, problem: `its page size ${ps} is not one LMDB writes` };
    const second = read(ps);
    if (!second) return { ok: false, problem: `it is ${size} bytes, shorter than its two meta pages` };
    const m1 = readMeta(second);
    if (typeof m1 === 'string') return { ok: false, problem: m1 };
    const current = m1.txnid > m0.txnid ? m1 : m0;
    const needed = (current.lastPage + 1n) * BigInt(ps);
    if (needed > BigInt(size)) return { ok: false, problem: `it is truncated (${size} bytes; its last transaction uses ${needed})` };
    for (const root of current.roots) {
      if (root !== P_INVALID && root > current.lastPage) return { ok: false, problem: `a tree root (page ${root}) lies past its last page (${current.lastPage})` };
    }
    return { ok: true, empty: false };
  } finally {
    closeSync(fd);
  }
}

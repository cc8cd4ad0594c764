/**
 * State store choice (issue #12 item 1): lmdb vs better-sqlite3 on tidewire's workload, side by
 * side in one run, alternating, medians of the repeats and the ratio lmdb ÷ sqlite.
 *
 *   node --import tsx bench/state-store-choice.ts [--quick] [--repeats 3] [--dir <parent dir>] [--variants]
 *
 * The alternative is not a dependency: a candidate whose package is not installed is skipped (said
 * so in the output), so lmdb can always be measured alone. To compare, install better-sqlite3 next
 * to it first, e.g. in a scratch copy: `npm install --no-save better-sqlite3@12.11.1` (no prebuilt
 * binary can be downloaded here, so it compiles from source: about a minute, needs g++ and python3).
 * `--variants` adds lmdb with its Linux default, overlappingSync. The figures and the decision:
 * docs/BENCHMARKS.md, "State store choice".
 *
 * Workload, for both candidates, the same bytes:
 * - a topic: path `accounts/<bid>/<aid>` (~30 B), value JSON (~200 B) stored as its JSON text,
 *   version, tenant, source; the source position (a Postgres LSN as a string) in the same
 *   transaction as the topics it covers.
 * - (a) steady state, durable: `serial` awaits one durable store transaction per source
 *   transaction of 1, 10 and 100 upserts (commit latency bound); `grouped` issues source
 *   transactions without waiting, at most 2,000 outstanding, and commits whatever is pending every
 *   5 ms (or when the commit in flight finishes, if later) as one durable store transaction: the
 *   group commit a caller gets. Changes/s and CPU seconds (user + system, every thread of the
 *   process, so lmdb's writer thread counts) per million changes. `memory` is the same loop with no
 *   store at all: what the loop itself costs.
 * - (b) load of 1,000,000 topics written in transactions of 10,000, then a fresh child process
 *   opens the store and iterates every topic in path order, decoding each (JSON.parse of the
 *   value), retaining none: time and peak RSS of that process.
 * - (c) 200,000 point reads by path (random, uniform over the 1,000,000), decoded.
 * - (d) file size per topic: the store's files after the load (sqlite: after a WAL checkpoint).
 *
 * Durability: lmdb with `overlappingSync: false` (its commit fsyncs before the commit promise
 * resolves; `--variants` adds lmdb's Linux default, overlappingSync, awaiting `flushed`); sqlite in WAL mode with `synchronous=FULL` (the
 * WAL is fsynced at every commit; NORMAL would lose the last commits at a power loss).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

// ---------- workload ----------

interface Row {
  path: string;
  tenant: string;
  source: string;
  version: number;
  value: Record<string, unknown>;
}
interface SourceTxn {
  rows: Row[];
  position: string;
}

const FILLER = 'x'.repeat(84);
function rowFor(i: number, version: number): Row {
  const bid = i % 1000;
  return {
    path: `accounts/${bid}/${i}`,
    tenant: 'default',
    source: 'postgres:public.pgbench_accounts',
    version,
    value: { aid: i, bid, abalance: (version * 7919) % 100000 - 50000, filler: FILLER, updated_at: '2026-12-02T19:00:00.000Z', v: version },
  };
}

function lsn(n: number): string {
  return `${Math.floor(n / 0x100000000).toString(16).toUpperCase()}/${(n >>> 0).toString(16).toUpperCase()}`;
}

/** Deterministic pseudo-random (xorshift32), so both candidates see the same keys. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

// ---------- candidates ----------

interface Candidate {
  readonly name: string;
  /** One durable store transaction holding every row of every source transaction, and the last position. */
  commit(txns: readonly SourceTxn[]): Promise<void>;
  bulk(rows: readonly Row[]): Promise<void>;
  get(path: string): Row | undefined;
  /** Visits every topic in path order; returns how many. */
  scan(): number;
  close(): Promise<void>;
  /** Bytes on disk (allocated blocks) of its files. */
  bytes(): number;
}

function dirBytes(dir: string): { apparent: number; allocated: number } {
  let apparent = 0;
  let allocated = 0;
  for (const f of readdirSync(dir)) {
    const s = statSync(join(dir, f));
    apparent += s.size;
    allocated += s.blocks * 512;
  }
  return { apparent, allocated };
}

/**
 * The record as services/state/lmdb-state-store.ts writes it: `[version, tenant, source, value]`
 * as JSON text. `overlappingSync: false`: LMDB's own commit fsyncs before it returns, so the
 * commit promise resolves when the transaction is durable. With `overlapping` (lmdb's default
 * on Linux) the commit promise resolves when the transaction is visible, and `flushed` later.
 */
function openLmdb(dir: string, overlapping = false): Candidate {
  const { open } = require('lmdb');
  const env = open({ path: dir, encoding: 'string', maxDbs: 4, overlappingSync: overlapping });
  const topics = env.openDB({ name: 'topics', encoding: 'string' });
  const meta = env.openDB({ name: 'meta', encoding: 'string' });
  const record = (r: Row) => JSON.stringify([r.version, r.tenant, r.source, r.value]);
  const decode = (path: string, text: string | undefined): Row | undefined => {
    if (text === undefined) return undefined;
    const v = JSON.parse(text);
    return { path, version: v[0], tenant: v[1], source: v[2], value: v[3] };
  };
  const durable = async (p: Promise<unknown>) => {
    await p;
    if (overlapping) await env.flushed;
  };
  return {
    name: overlapping ? 'lmdb-overlap' : 'lmdb',
    commit: (txns) =>
      durable(
        env.transaction(() => {
          for (const t of txns) for (const r of t.rows) topics.put(r.path, record(r));
          meta.put('position:pg', txns[txns.length - 1].position);
        }),
      ),
    bulk: (rows) =>
      durable(
        env.transaction(() => {
          for (const r of rows) topics.put(r.path, record(r));
        }),
      ),
    get: (path) => decode(path, topics.get(path)),
    scan() {
      let n = 0;
      for (const { key, value } of topics.getRange({})) {
        if (decode(key, value)) n++;
      }
      return n;
    },
    close: () => env.close(),
    bytes: () => dirBytes(dir).allocated,
  };
}

function openSqlite(dir: string): Candidate {
  const Database = require('better-sqlite3');
  const db = new Database(join(dir, 'state.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE IF NOT EXISTS topics (path TEXT PRIMARY KEY, version INTEGER NOT NULL, tenant TEXT NOT NULL, source TEXT NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
           CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`);
  const upsert = db.prepare('INSERT INTO topics (path, version, tenant, source, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET version = excluded.version, tenant = excluded.tenant, source = excluded.source, value = excluded.value');
  const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const select = db.prepare('SELECT version, tenant, source, value FROM topics WHERE path = ?').raw();
  const all = db.prepare('SELECT path, version, tenant, source, value FROM topics ORDER BY path').raw();
  const write = db.transaction((txns: readonly SourceTxn[]) => {
    for (const t of txns) for (const r of t.rows) upsert.run(r.path, r.version, r.tenant, r.source, JSON.stringify(r.value));
    setMeta.run('position:pg', txns[txns.length - 1].position);
  });
  const bulk = db.transaction((rows: readonly Row[]) => {
    for (const r of rows) upsert.run(r.path, r.version, r.tenant, r.source, JSON.stringify(r.value));
  });
  return {
    name: 'sqlite',
    // Synchronous: the commit (and its fsync) runs on the calling thread.
    async commit(txns) {
      write(txns);
    },
    async bulk(rows) {
      bulk(rows);
    },
    get(path) {
      const v = select.get(path) as [number, string, string, string] | undefined;
      return v && { path, version: v[0], tenant: v[1], source: v[2], value: JSON.parse(v[3]) };
    },
    scan() {
      let n = 0;
      for (const v of all.iterate() as Iterable<[string, number, string, string, string]>) {
        if (JSON.parse(v[4])) n++;
      }
      return n;
    },
    async close() {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
    bytes: () => dirBytes(dir).allocated,
  };
}

/** No store: the same loop, for what the loop costs by itself. */
function openMemory(): Candidate {
  const m = new Map<string, string>();
  return {
    name: 'memory',
    async commit(txns) {
      for (const t of txns) for (const r of t.rows) m.set(r.path, JSON.stringify(r.value));
    },
    async bulk() {},
    get: () => undefined,
    scan: () => 0,
    async close() {},
    bytes: () => 0,
  };
}

const OPENERS: Record<string, (dir: string) => Candidate> = { lmdb: (d) => openLmdb(d), 'lmdb-overlap': (d) => openLmdb(d, true), sqlite: openSqlite, memory: openMemory };
const PACKAGES: Record<string, string> = { lmdb: 'lmdb', 'lmdb-overlap': 'lmdb', sqlite: 'better-sqlite3' };

function available(name: string): boolean {
  try {
    require.resolve(PACKAGES[name]);
    return true;
  } catch {
    return false;
  }
}

/** The installed version (lmdb's `exports` hide its package.json from require). */
function packageVersion(pkg: string): string {
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== pkg) dir = dirname(dir);
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
}

// ---------- measurements ----------

interface Steady {
  changesPerSec: number;
  cpuSecPerMillion: number;
  commits: number;
  changes: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const KEYS = 100_000;

async function steady(c: Candidate, mode: 'serial' | 'grouped', perTxn: number, seconds: number, seed: number): Promise<Steady> {
  const rand = rng(seed);
  let version = 1;
  let pos = 0x16b3748;
  const makeTxn = (): SourceTxn => {
    const rows: Row[] = [];
    for (let i = 0; i < perTxn; i++) rows.push(rowFor(Math.floor(rand() * KEYS), ++version));
    pos += 1000;
    return { rows, position: lsn(pos) };
  };
  let changes = 0;
  let commits = 0;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  if (mode === 'serial') {
    while (performance.now() < deadline) {
      await c.commit([makeTxn()]);
      changes += perTxn;
      commits++;
    }
  } else {
    const MAX_OUTSTANDING = 2000;
    const FLUSH_MS = 5;
    let pending: SourceTxn[] = [];
    let inFlight: Promise<void> | null = null;
    let lastFlush = performance.now();
    while (performance.now() < deadline) {
      // Produce source transactions until the flush is due or the bound is reached.
      while (pending.length === 0 || (pending.length < MAX_OUTSTANDING && performance.now() - lastFlush < FLUSH_MS)) {
        for (let k = 0; k < 16 && pending.length < MAX_OUTSTANDING; k++) pending.push(makeTxn());
      }
      if (inFlight) await inFlight;
      const group = pending;
      pending = [];
      lastFlush = performance.now();
      const n = group.length * perTxn;
      inFlight = c.commit(group).then(() => {
        changes += n;
        commits++;
      });
      // Let the store's own threads and callbacks run between groups.
      await new Promise<void>((r) => setImmediate(r));
    }
    if (inFlight) await inFlight;
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  return { changesPerSec: changes / secs, cpuSecPerMillion: (cpu / changes) * 1e6, commits, changes };
}

interface Loaded {
  writeSec: number;
  bytesPerTopic: number;
}

async function load(c: Candidate, dir: string, topics: number): Promise<Loaded> {
  const t0 = performance.now();
  const BATCH = 10_000;
  for (let i = 0; i < topics; i += BATCH) {
    const rows: Row[] = [];
    for (let j = i; j < Math.min(topics, i + BATCH); j++) rows.push(rowFor(j, 1));
    await c.bulk(rows);
  }
  const writeSec = (performance.now() - t0) / 1000;
  await c.close();
  return { writeSec, bytesPerTopic: dirBytes(dir).allocated / topics };
}

interface Opened {
  openScanSec: number;
  peakRssMiB: number;
  readsPerSec: number;
}

/** In a fresh process: open, iterate every topic in path order, then point reads. */
async function childOpen(name: string, dir: string, topics: number, reads: number): Promise<Opened> {
  const t0 = performance.now();
  const c = OPENERS[name](dir);
  const n = c.scan();
  const openScanSec = (performance.now() - t0) / 1000;
  if (n !== topics) throw new Error(`${name}: scanned ${n} topics, expected ${topics}`);
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const rand = rng(7);
  const t1 = performance.now();
  for (let i = 0; i < reads; i++) {
    const k = Math.floor(rand() * topics);
    const r = c.get(`accounts/${k % 1000}/${k}`);
    if (!r || r.value.aid !== k) throw new Error(`${name}: read of topic ${k} failed`);
  }
  const readsPerSec = reads / ((performance.now() - t1) / 1000);
  await c.close();
  return { openScanSec, peakRssMiB, readsPerSec };
}

function spawnOpen(name: string, dir: string, topics: number, reads: number): Opened {
  const r = spawnSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--child-open', name, dir, String(topics), String(reads)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`child for ${name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

// ---------- report ----------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child-open') {
    const out = await childOpen(args[1], args[2], Number(args[3]), Number(args[4]));
    console.log(JSON.stringify(out));
    return;
  }
  const quick = args.includes('--quick');
  const at = args.indexOf('--repeats');
  const repeats = at >= 0 ? Number(args[at + 1]) : quick ? 1 : 3;
  const dirAt = args.indexOf('--dir');
  // The state lives on disk next to the working directory by default, so measure a real disk
  // (not a tmpfs) unless told otherwise.
  const parent = dirAt >= 0 ? args[dirAt + 1] : join(process.cwd(), `.state-bench-${process.pid}`);
  mkdirSync(parent, { recursive: true });
  const seconds = quick ? 0.5 : 3;
  const topics = quick ? 20_000 : 1_000_000;
  const reads = quick ? 10_000 : 200_000;

  const names = ['lmdb', 'sqlite', ...(args.includes('--variants') ? ['lmdb-overlap'] : [])].filter((n) => {
    if (available(n)) return true;
    console.log(`${n}: package ${PACKAGES[n]} not installed, skipped (npm install --no-save ${PACKAGES[n]}${n === 'sqlite' ? '@12.11.1' : ''})`);
    return false;
  });
  const versions = names.map((n) => `${PACKAGES[n]} ${packageVersion(PACKAGES[n])}`).join(', ');
  console.log(`node ${process.version}; ${versions}; ${repeats} repeat(s), alternating; state under ${parent}\n`);

  const results: Record<string, Record<string, number[]>> = {};
  const put = (scenario: string, name: string, metric: string, v: number) => {
    ((results[`${scenario}|${metric}`] ??= {})[name] ??= []).push(v);
  };
  const fresh = (name: string) => mkdtempSync(join(parent, `${name}-`));

  const scenarios: Array<['serial' | 'grouped', number]> = [['serial', 1], ['serial', 10], ['serial', 100], ['grouped', 1], ['grouped', 10], ['grouped', 100]];
  for (let rep = 0; rep < repeats; rep++) {
    // Alternate which candidate goes first in each repeat.
    const order = rep % 2 === 0 ? names : [...names].reverse();
    for (const [mode, n] of scenarios) {
      const label = `${mode} ${n}/txn`;
      for (const name of [...order, ...(mode === 'grouped' ? ['memory'] : [])]) {
        const dir = fresh(name);
        const c = OPENERS[name](dir);
        // Warm: the keys exist, as in steady state.
        const warm: Row[] = [];
        for (let i = 0; i < KEYS; i++) warm.push(rowFor(i, 1));
        await c.bulk(warm);
        const s = await steady(c, mode, n, seconds, 1000 + rep);
        await c.close();
        rmSync(dir, { recursive: true, force: true });
        put(label, name, 'changes/s', s.changesPerSec);
        put(label, name, 'CPU s per 1M changes', s.cpuSecPerMillion);
        put(label, name, 'changes per store commit', s.changes / s.commits);
        process.stdout.write(`  rep ${rep + 1} ${label.padEnd(16)} ${name.padEnd(7)} ${fmt(s.changesPerSec).padStart(9)} changes/s  ${fmt(s.cpuSecPerMillion).padStart(7)} CPU s/1M  ${fmt(s.changes / s.commits)} changes/commit\n`);
      }
    }
    for (const name of order) {
      const dir = fresh(name);
      const l = await load(OPENERS[name](dir), dir, topics);
      const o = spawnOpen(name, dir, topics, reads);
      rmSync(dir, { recursive: true, force: true });
      const label = `${topics.toLocaleString('en-US')} topics`;
      put(label, name, 'write s (txns of 10,000)', l.writeSec);
      put(label, name, 'open + scan s (fresh process)', o.openScanSec);
      put(label, name, 'peak RSS MiB of that process', o.peakRssMiB);
      put(label, name, 'point reads/s', o.readsPerSec);
      put(label, name, 'bytes on disk per topic', l.bytesPerTopic);
      process.stdout.write(`  rep ${rep + 1} load ${name.padEnd(7)} write ${fmt(l.writeSec)} s, open+scan ${fmt(o.openScanSec)} s, RSS ${fmt(o.peakRssMiB)} MiB, ${fmt(o.readsPerSec)} reads/s, ${fmt(l.bytesPerTopic)} B/topic\n`);
    }
  }
  rmSync(parent, { recursive: true, force: true });

  console.log(`\nMedians of ${repeats}:\n`);
  const cols = [...names, 'memory'];
  console.log(`| scenario | metric | ${names.join(' | ')} |${names.length === 2 ? ` ${names[0]} ÷ ${names[1]} |` : ''} memory (no store) |`);
  console.log(`| --- | --- | ${names.map(() => '---:').join(' | ')} |${names.length === 2 ? ' ---: |' : ''} ---: |`);
  for (const [key, byName] of Object.entries(results)) {
    const [scenario, metric] = key.split('|');
    const m = Object.fromEntries(cols.map((n) => [n, byName[n] ? median(byName[n]) : NaN]));
    const ratio = names.length === 2 ? ` ${fmt(m[names[0]] / m[names[1]])} |` : '';
    console.log(`| ${scenario} | ${metric} | ${names.map((n) => fmt(m[n])).join(' | ')} |${ratio} ${fmt(m.memory)} |`);
  }
}

await main();

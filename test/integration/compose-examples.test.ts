/**
 * The scale-out config files that docker-compose.yml runs (examples/compose/ingest.yaml and
 * edge.yaml), run here as `tidewire start` processes on a real Postgres and a real Kafka: the
 * compose hostnames replaced by the test's (TIDEWIRE_DATABASE_URL and TIDEWIRE_KAFKA_BROKERS as the
 * compose file sets them, handoff.kafka.brokers in the file), the ingest node's state dir a
 * temporary one, loopback instead of 0.0.0.0. The database gets examples/compose/init.sql and Kafka
 * the topic kafka-init creates; the edge starts once the ingest node is ready, as its depends_on
 * says. Its clients then get the orders table, a price and later writes. No Docker engine here:
 * test/unit/compose.test.ts checks the compose file itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import YAML from 'yaml';
import { TidewireClient } from '../../client/index.ts';
import { type Config, loadConfigFile } from '../../services/config/config.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const EXAMPLES = join(ROOT, 'examples/compose');

let broker: KafkaBroker;
let db: TestPostgres;
const nodes: ServiceProcess[] = [];
const clients: TidewireClient[] = [];

/** The topic kafka-init creates, with its partitions and configs, from its entrypoint in docker-compose.yml. */
function kafkaInitTopic(): { topic: string; numPartitions: number; configEntries: Array<{ name: string; value: string }> } {
  const compose = YAML.parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { entrypoint: string[] }> };
  const args = compose.services['kafka-init'].entrypoint;
  const value = (flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
  const configEntries = value('--config').map((c) => ({ name: c.slice(0, c.indexOf('=')), value: c.slice(c.indexOf('=') + 1) }));
  return { topic: value('--topic')[0], numPartitions: Number(value('--partitions')[0]), configEntries };
}

/** An example file as its container reads it, with the test's Postgres and Kafka for the compose hosts. */
function example(file: string): Config {
  const config = loadConfigFile(join(EXAMPLES, file), { TIDEWIRE_DATABASE_URL: db.url, TIDEWIRE_KAFKA_BROKERS: broker.brokers.join(',') });
  assert.deepEqual(config.handoff?.kafka?.brokers, ['kafka:9092'], `${file} names the compose broker`);
  const handoff = { kafka: { ...config.handoff!.kafka!, brokers: broker.brokers } };
  return { ...config, handoff, server: { ...config.server, host: '127.0.0.1' } };
}

before(async () => {
  [broker, db] = await Promise.all([startKafka(), startPostgres()]);
  await db.query(readFileSync(join(EXAMPLES, 'init.sql'), 'utf8'));
  const admin = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [kafkaInitTopic()], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await db?.stop();
  await broker?.stop();
});

async function orders(): Promise<Map<string, Record<string, unknown>>> {
  const { rows } = await db.query<{ id: number; customer_id: number; status: string }>('SELECT id, customer_id, status FROM orders');
  return new Map(rows.map((r) => [`orders/${r.customer_id}/${r.id}`, { status: r.status }]));
}

test('the example ingest and edge files: an edge started after the ingest node serves its orders, prices and writes', async () => {
  const ingestConfig = example('ingest.yaml');
  assert.equal(ingestConfig.role, 'ingest');
  const ingest = await startServiceProcess({ ...ingestConfig, state: { ...ingestConfig.state, dir: mkdtempSync(join(tmpdir(), 'tidewire-compose-ingest-')) } }, await freePort());
  nodes.push(ingest);
  // depends_on ingest: service_healthy, whose health check is /ready.
  await waitFor('the ingest node to be ready', async () => (await fetch(`http://127.0.0.1:${ingest.port}/ready`)).status === 200, 60_000, 200);

  const edgeConfig = example('edge.yaml');
  assert.equal(edgeConfig.role, 'edge');
  const edge = await startServiceProcess(edgeConfig, await freePort());
  nodes.push(edge);
  const client = new TidewireClient({ url: `ws://127.0.0.1:${edge.port}/ws` });
  clients.push(client);
  const orderSub = client.subscribe('orders/**');
  const priceSub = client.subscribe('prices/*');
  await client.connect();

  const statuses = () => new Map([...orderSub.values].map(([path, v]) => [path, { status: (v as { status: string }).status }]));
  const until = (what: string, check: () => boolean | Promise<boolean>) =>
    waitFor(what, check, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ingest ---\n${ingest.output().slice(-2000)}\n--- edge ---\n${edge.output().slice(-2000)}`, { cause: err });
    });
  let expected = await orders();
  assert.equal(expected.size, 20, 'init.sql inserts 20 orders');
  await until('the orders on the edge', () => orderSub.live && JSON.stringify([...statuses()].sort()) === JSON.stringify([...expected].sort()));
  const [path, first] = [...orderSub.values][0];
  assert.ok(!('internal_notes' in first), `${path}: the excluded column stays out`);

  const producer = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    await producer.send({ topic: kafkaInitTopic().topic, messages: [{ key: 'BTC', value: JSON.stringify({ price: 101.5 }) }] });
  } finally {
    await producer.disconnect();
  }
  await db.query("UPDATE orders SET status = 'shipped' WHERE id <= 5");
  expected = await orders();
  await until('the price and the write on the edge', () => priceSub.values.get('prices/BTC')?.price === 101.5 && JSON.stringify([...statuses()].sort()) === JSON.stringify([...expected].sort()));
});

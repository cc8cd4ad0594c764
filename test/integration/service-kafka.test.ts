/**
 * Kafka through the whole service: records produced to a real broker reach a WebSocket client as
 * values, then deltas; a tombstone arrives as a removal.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import WebSocket from 'ws';
import { pino } from 'pino';
import { TidewireClient } from '../../client/index.ts';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { waitFor } from '../support/wait.ts';

let broker: KafkaBroker;
let service: TidewireService;
let port: number;

before(async () => {
  broker = await startKafka();
  const admin = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'prices', numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();
  const config = parseConfig(
    { server: { port: 0 }, kafka: { brokers: broker.brokers, groupId: 'svc-e2e', topics: [{ topic: 'prices', format: 'json', path: 'prices/{value.venue}/{key}' }] } },
    {},
  );
  service = new TidewireService(config, { logger: pino({ level: 'silent' }) });
  ({ port } = await service.start());
});

after(async () => {
  await service?.stop();
  await broker?.stop();
});

test('produced records reach a subscriber as values, deltas and removals', async (t) => {
  const producer = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  // The frames as they arrive, to look at the delta itself (frames also carry the SDK's positions).
  const frames: string[] = [];
  class Tapped extends WebSocket {
    constructor(address: string) {
      super(address);
      this.on('message', (data) => frames.push(String(data)));
    }
  }
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, WebSocket: Tapped as never });
  t.after(() => client.close());
  const raw: string[] = [];
  const sub = client.subscribe('prices/xnas/**', {
    onValue: (path, value, version) => raw.push(`${path} v${version} ${JSON.stringify(value)}`),
    onRemoval: (path) => raw.push(`${path} removed`),
  });
  await client.connect();
  await waitFor('live', () => sub.live);

  const quote = (bid: number) => JSON.stringify({ venue: 'xnas', symbol: 'ACME', bid, ask: 10.5, ts: 'fixed', description: 'Acme Corporation common stock' });
  await producer.send({ topic: 'prices', messages: [{ key: 'ACME', value: quote(10.1) }, { key: 'OTHR', value: JSON.stringify({ venue: 'xlon', bid: 1 }) }] });
  await waitFor('first value', () => sub.values.get('prices/xnas/ACME'));
  await producer.send({ topic: 'prices', messages: [{ key: 'ACME', value: quote(10.2) }] });
  await waitFor('delta applied', () => (sub.values.get('prices/xnas/ACME') as { bid: number } | undefined)?.bid === 10.2);
  const deltas = frames.flatMap((f) => (JSON.parse(f) as Array<{ type: string }>).filter((m) => m.type === 'delta'));
  assert.equal(deltas.length, 1, 'the change went out as a delta');
  assert.ok(JSON.stringify(deltas[0]).length < quote(10.2).length, 'smaller than the record');
  await producer.send({ topic: 'prices', messages: [{ key: 'ACME', value: null }] });
  await waitFor('removal', () => !sub.values.has('prices/xnas/ACME'));
  assert.deepEqual(raw, [
    `prices/xnas/ACME v1 ${quote(10.1)}`,
    `prices/xnas/ACME v2 ${quote(10.2)}`,
    'prices/xnas/ACME removed',
  ]);
  assert.ok(!sub.values.has('prices/xlon/OTHR'), 'other venues are not in this subscription');
});

/**
 * Stalls that show (issue 14, item 4), against a real broker and through the whole service: a
 * Kafka topic that stops producing (no record, no heartbeat) becomes a stale feed after
 * kafka.staleAfterMs: /ready answers 503 naming it, /health says degraded, the gauges show it
 * and a subscribed WebSocket client gets `status` with `stale: true`. Heartbeats alone on the
 * mapping's heartbeatTopic keep a feed fresh; a record after the stall makes it fresh again and
 * the client gets `stale: false`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { pino } from 'pino';
import { type FeedStatus, TidewireClient } from '../../client/index.ts';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { waitFor } from '../support/wait.ts';

const STALE_AFTER_MS = 1_200;
const HEARTBEAT = '__debezium-heartbeat.dbz';

let broker: KafkaBroker;
let service: TidewireService;
let port: number;
let producer: Producer;

before(async () => {
  broker = await startKafka();
  const kafka = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'dbz.public.orders' }, { topic: 'quotes' }, { topic: HEARTBEAT }], waitForLeaders: true });
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
  // An old heartbeat before start says nothing about now: it is not read.
  await producer.send({ topic: HEARTBEAT, messages: [{ value: '{"ts_ms":1}' }] });
  const config = parseConfig(
    {
      server: { port: 0 },
      kafka: {
        brokers: broker.brokers,
        groupId: 'stale-feed',
        staleAfterMs: STALE_AFTER_MS,
        topics: [
          { topic: 'dbz.public.orders', format: 'json', path: 'orders/{key}', heartbeatTopic: HEARTBEAT },
          { topic: 'quotes', format: 'json', path: 'quotes/{key}' },
        ],
      },
    },
    {},
  );
  service = new TidewireService(config, { logger: pino({ level: 'silent' }), processMetrics: false });
  ({ port } = await service.start());
});

after(async () => {
  await producer?.disconnect();
  await service?.stop();
  await broker?.stop();
});

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
}

async function gauge(name: string, topic: string): Promise<number | null> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{topic="${topic}"}`));
  return line === undefined ? null : Number(line.split(' ').pop());
}

test('a feed that stops is stale everywhere it shows; heartbeats keep one fresh; a record revives it', async () => {
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws` });
  const orderStatus: FeedStatus[] = [];
  const quoteStatus: FeedStatus[] = [];
  const orders = client.subscribe('orders/**', { onStatus: (s) => orderStatus.push(s) });
  const quotes = client.subscribe('quotes/**', { onStatus: (s) => quoteStatus.push(s) });
  await client.connect();
  await waitFor('live', () => orders.live && quotes.live);
  await producer.send({ topic: 'dbz.public.orders', messages: [{ key: '1', value: '{"id":1,"total":5}' }] });
  await producer.send({ topic: 'quotes', messages: [{ key: 'ACME', value: '{"bid":10}' }] });
  await waitFor('values', () => orders.values.has('orders/1') && quotes.values.has('quotes/ACME'));
  assert.equal((await getJson('/ready')).status, 200);

  // Heartbeats only for the orders mapping, well inside the threshold.
  const beat = setInterval(() => void producer.send({ topic: HEARTBEAT, messages: [{ value: `{"ts_ms":${Date.now()}}` }] }).catch(() => {}), 250);
  try {
    await waitFor('quotes stale', () => quotes.stale, 10_000);
    assert.deepEqual(quoteStatus, [{ stale: true, sources: ['quotes'] }]);

    const ready = await getJson('/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.ready, false);
    const reason = ready.body.reasons.join('\n');
    assert.match(reason, /stale feed.*quotes/);
    assert.doesNotMatch(reason, /dbz\.public\.orders/, 'the feed kept alive by heartbeats is not stale');
    const health = await getJson('/health');
    assert.equal(health.body.status, 'degraded');
    const kafkaHealth = health.body.sources.find((s: { name: string }) => s.name === 'kafka');
    assert.deepEqual(kafkaHealth.stale.map((f: { feed: string }) => f.feed), ['quotes']);
    assert.equal(await gauge('tidewire_kafka_feed_stale', 'quotes'), 1);
    assert.ok((await gauge('tidewire_kafka_feed_age_seconds', 'quotes'))! >= STALE_AFTER_MS / 1000);

    // Well past the threshold since the last order record: heartbeats alone held it fresh.
    await new Promise((r) => setTimeout(r, STALE_AFTER_MS));
    assert.equal(await gauge('tidewire_kafka_feed_stale', 'dbz.public.orders'), 0);
    assert.ok((await gauge('tidewire_kafka_feed_age_seconds', 'dbz.public.orders'))! < STALE_AFTER_MS / 1000);
    assert.equal(orders.stale, false);
    assert.deepEqual(orderStatus, []);
    assert.ok(!service.store.get(`${HEARTBEAT}`) && [...orders.values.keys()].every((p) => p === 'orders/1'), 'heartbeats never become topics');

    // A new subscriber of a stale feed learns it right after `subscribed`.
    const late: FeedStatus[] = [];
    const lateSub = client.subscribe('quotes/ACME', { onStatus: (s) => late.push(s) });
    await waitFor('late status', () => late.length === 1);
    assert.deepEqual(late, [{ stale: true, sources: ['quotes'] }]);

    // A record after the stall: fresh again, and the subscribers are told.
    await producer.send({ topic: 'quotes', messages: [{ key: 'ACME', value: '{"bid":11}' }] });
    await waitFor('quotes fresh', () => !quotes.stale && !lateSub.stale);
    assert.deepEqual(quoteStatus, [{ stale: true, sources: ['quotes'] }, { stale: false, sources: [] }]);
    assert.deepEqual((quotes.values.get('quotes/ACME') as { bid: number }).bid, 11);
    assert.equal(await gauge('tidewire_kafka_feed_stale', 'quotes'), 0);
  } finally {
    clearInterval(beat);
  }

  // Heartbeats stop too: now the orders feed goes stale.
  await waitFor('orders stale', () => orders.stale, 10_000);
  assert.deepEqual(orderStatus, [{ stale: true, sources: ['dbz.public.orders'] }]);
  assert.match((await getJson('/ready')).body.reasons.join('\n'), /dbz\.public\.orders/);
  client.close();
});

test('with security on, the status names no feed and /ready tells a stranger only the state', async () => {
  const kafka = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'sec.quotes' }, { topic: 'sec.hidden' }], waitForLeaders: true });
  await admin.disconnect();
  const config = parseConfig(
    {
      server: { port: 0 },
      security: {
        jwt: { algorithms: ['HS256'], secret: 'a-test-secret-of-at-least-32-characters!' },
        roles: { public: { read: ['quotes/**'] } },
        anonymous: { role: 'public', tenant: 'public' },
      },
      kafka: {
        brokers: broker.brokers,
        groupId: 'stale-feed-secure',
        staleAfterMs: STALE_AFTER_MS,
        topics: [
          { topic: 'sec.quotes', format: 'json', path: 'quotes/{key}', tenant: 'public' },
          { topic: 'sec.hidden', format: 'json', path: 'hidden/{key}', tenant: 'public' },
        ],
      },
    },
    {},
  );
  const secure = new TidewireService(config, { logger: pino({ level: 'silent' }), processMetrics: false });
  const { port: securePort } = await secure.start();
  const client = new TidewireClient({ url: `ws://127.0.0.1:${securePort}/ws` });
  try {
    await producer.send({ topic: 'sec.quotes', messages: [{ key: 'ACME', value: '{"bid":1}' }] });
    await producer.send({ topic: 'sec.hidden', messages: [{ key: 'X', value: '{"secret":1}' }] });
    const seen: FeedStatus[] = [];
    const hiddenSeen: FeedStatus[] = [];
    const quotes = client.subscribe('quotes/**', { onStatus: (s) => seen.push(s) });
    const hidden = client.subscribe('hidden/**', { onStatus: (s) => hiddenSeen.push(s) });
    await client.connect();
    await waitFor('quotes value', () => quotes.values.has('quotes/ACME'));
    await waitFor('stale', () => quotes.stale, 10_000);
    assert.deepEqual(seen, [{ stale: true }], 'no feed names with security on');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(hiddenSeen, [], 'a feed behind topics the session may not read is not reported');
    assert.equal(hidden.stale, false);
    const res = await fetch(`http://127.0.0.1:${securePort}/ready`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { reasons: string[] };
    assert.deepEqual(body.reasons, ['kafka: degraded']);
  } finally {
    client.close();
    await secure.stop();
  }
});

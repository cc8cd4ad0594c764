// Proves the test harness gives us a real broker that behaves like one: partitioned
// topics, consumer groups, and data (topics, committed offsets, acked messages)
// surviving a restart and a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Consumer, type EachMessagePayload } from 'kafkajs';
import { kafkaJarsCached, startKafka, type KafkaBroker } from '../support/kafka-broker.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const log = (msg: string) => console.log(`[kafka] ${msg}`);

function until<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const tick = () => {
      const v = check();
      if (v !== undefined) return resolve(v);
      if (Date.now() > deadline) return reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

async function consumeInto(kafka: Kafka, groupId: string, topic: string, seen: string[]): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }: EachMessagePayload) => {
      seen.push(message.value?.toString() ?? '');
    },
  });
  return consumer;
}

test('harness Kafka broker: produce, consume with a group, survive a restart and a kill', { timeout: 300_000 }, async () => {
  const cold = !kafkaJarsCached();
  let t0 = Date.now();
  const broker: KafkaBroker = await startKafka({ log });
  const firstStartMs = Date.now() - t0;
  console.log(
    `[kafka] first startup: ${(firstStartMs / 1000).toFixed(1)} s ` +
      `(${cold ? 'jar cache was empty: includes the Maven download' : 'jars were already cached'})`,
  );

  const kafka = new Kafka({
    clientId: 'kafka-broker-test',
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
    // Enough retries to ride out the few seconds the broker is down during restart().
    retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
  const topic = `harness-${Date.now()}`;
  const groupId = `${topic}-group`;
  const admin = kafka.admin();
  const producer = kafka.producer();
  const consumers: Consumer[] = [];

  try {
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true }), true);
    await producer.connect();

    const sent = Array.from({ length: 100 }, (_, i) => `m-${i}`);
    await producer.send({ topic, messages: sent.map((value, i) => ({ key: `k-${i}`, value })) });

    const offsets = await admin.fetchTopicOffsets(topic);
    assert.equal(offsets.length, 3);
    assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), 100);
    assert.ok(offsets.every((p) => Number(p.high) > 0), 'keys should spread messages over all 3 partitions');

    const seen: string[] = [];
    consumers.push(await consumeInto(kafka, groupId, topic, seen));
    await until('100 messages consumed', 60_000, () => (seen.length >= 100 ? true : undefined));
    assert.deepEqual([...seen].sort(), [...sent].sort());
    // disconnect() commits what was consumed, so the group's position is on the broker
    // before it goes down.
    await consumers.pop()!.disconnect();

    t0 = Date.now();
    await broker.restart();
    console.log(`[kafka] restart (graceful stop + start, same port and data): ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    assert.ok((await admin.listTopics()).includes(topic), 'topic should survive the restart');
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(meta.topics[0]!.partitions.length, 3);
    // Right after a restart the group coordinator may still be loading: NOT_COORDINATOR is retriable.
    const committed = await retryRetriable(() => admin.fetchOffsets({ groupId, topics: [topic] }));
    assert.equal(
      committed[0]!.partitions.reduce((n, p) => n + Number(p.offset), 0),
      100,
      'committed group offsets should survive the restart',
    );

    // Same producer instance: it has to reconnect on its own, as the pipeline's will.
    await producer.send({ topic, messages: [{ key: 'after', value: 'after-restart' }] });
    const after: string[] = [];
    consumers.push(await consumeInto(kafka, groupId, topic, after));
    await until('the post-restart message', 60_000, () => (after.includes('after-restart') ? true : undefined));
    assert.deepEqual(after, ['after-restart'], 'the group should resume after its committed offsets');
    await consumers.pop()!.disconnect();

    // kill()/start() is what failure tests use: acked writes must survive a SIGKILL.
    t0 = Date.now();
    await broker.kill();
    await broker.start();
    console.log(`[kafka] kill + start (SIGKILL, same port and data): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await producer.send({ topic, messages: [{ key: 'after-kill', value: 'after-kill' }] });
    const total = (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
    assert.equal(total, 102, 'all acked messages should survive the SIGKILL');
  } finally {
    for (const c of consumers) await c.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await broker.stop();
  }

  // A second, independent broker: what every later test file pays once the jars are cached.
  t0 = Date.now();
  const second = await startKafka({ log });
  const secondStartMs = Date.now() - t0;
  try {
    console.log(`[kafka] second startup (jars cached): ${(secondStartMs / 1000).toFixed(1)} s`);
    const probe = new Kafka({ clientId: 'kafka-broker-test-2', brokers: second.brokers, logLevel: logLevel.NOTHING });
    const a = probe.admin();
    await a.connect();
    assert.ok(Array.isArray(await a.listTopics()));
    await a.disconnect();
  } finally {
    await second.stop();
  }
});

async function retryRetriable<T>(op: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * `tidewire check` on Debezium topics against a real broker: it reads each mapped topic's
 * cleanup.policy and warns when a `format: debezium` mapping reads a compacted topic, where
 * Debezium's keyless truncate record is rejected and fails the Debezium task (issue 14).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
let kafka: KafkaBroker;

before(async () => {
  kafka = await startKafka();
  const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const compact = [{ name: 'cleanup.policy', value: 'compact' }];
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: 'shop.public.orders', configEntries: compact },
      { topic: 'shop.public.items', configEntries: [{ name: 'cleanup.policy', value: 'compact,delete' }] },
      { topic: 'shop.public.audit' }, // the broker's default: delete
      { topic: 'billing.public.invoices' },
      { topic: 'prices', configEntries: compact },
      { topic: 'tw.handoff.ok', numPartitions: 1 },
      { topic: 'tw.handoff.wide', numPartitions: 3 },
    ],
  });
  await admin.disconnect();
});
after(async () => {
  await kafka?.stop();
});

let n = 0;
function check(config: object): Promise<{ code: number | null; out: string; err: string }> {
  const file = join(tmpdir(), `tidewire-kafka-check-${process.pid}-${++n}.json`);
  writeFileSync(file, JSON.stringify(config));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'check', '--config', file], { cwd: ROOT, env: { ...process.env, TIDEWIRE_DATABASE_URL: '' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}
const lines = (out: string) => out.trimEnd().split('\n');

test('check warns for a Debezium mapping on compacted topics, and says what truncates need on the others', async () => {
  const r = await check({
    kafka: {
      brokers: kafka.brokers,
      topics: [
        { pattern: '^shop\\.public\\.', format: 'debezium', path: 'shop/{topic}/{key.id}' },
        { topic: 'billing.public.invoices', format: 'debezium', path: 'billing/{key.id}' },
        // A compacted topic in JSON format is a table's current state: nothing to warn about.
        { topic: 'prices', format: 'json', path: 'prices/{key}' },
      ],
    },
  });
  assert.equal(r.code, 0, `warnings do not fail the check:\n${r.out}${r.err}`);
  const out = lines(r.out);
  const warning = out.find((l) => l.startsWith('! kafka.topics.0.format: '));
  assert.ok(warning, r.out);
  assert.match(warning, /^! kafka\.topics\.0\.format: 2 topics are compacted \(cleanup\.policy=compact: shop\.public\.(items|orders), shop\.public\.(items|orders)\): Debezium's truncate record has no key, so the broker rejects it and the Debezium task fails for every table\./);
  assert.match(warning, /skipped\.operations=t \(the default\)/);
  assert.match(warning, /cleanup\.policy=delete with retention\.ms=-1 .* and skipped\.operations=none$/);
  assert.ok(!warning.includes('shop.public.audit'), 'the topic with cleanup.policy=delete is not named');
  assert.ok(
    out.includes('✔ kafka.topics.1.format: debezium topics not compacted (billing.public.invoices): truncates reach tidewire when the Debezium connector has skipped.operations=none'),
    r.out,
  );
  assert.ok(!out.some((l) => l.startsWith('! kafka.topics.2') || l.startsWith('✔ kafka.topics.2.format')), `no truncate check for a JSON mapping:\n${r.out}`);
});

test('one compacted topic named by an exact Debezium mapping is named in the warning', async () => {
  const r = await check({ kafka: { brokers: kafka.brokers, topics: [{ topic: 'shop.public.orders', format: 'debezium', path: 'orders/{key.id}' }] } });
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^! kafka\.topics\.0\.format: topic "shop\.public\.orders" is compacted \(cleanup\.policy=compact\): Debezium's truncate record has no key/m);
});

test('check reads the hand-off topic of an ingest or edge node: one partition, or not there yet (the ingest node creates it)', async () => {
  const ingest = (topic: string) => ({ role: 'ingest', handoff: { kafka: { brokers: kafka.brokers, topic } }, kafka: { brokers: kafka.brokers, topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}' }] } });
  const edge = (topic: string) => ({ role: 'edge', handoff: { kafka: { brokers: kafka.brokers, topic } } });
  const handoffLine = (out: string) => lines(out).find((l) => / handoff: /.test(l)) ?? `no handoff line in:\n${out}`;

  let r = await check(ingest('tw.handoff.new'));
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(handoffLine(r.out), /^✔ handoff: the hand-off topic tw\.handoff\.new does not exist yet: this node creates it at start/);
  r = await check(edge('tw.handoff.new'));
  assert.equal(r.code, 0, `a warning, not a failure:\n${r.out}${r.err}`);
  assert.match(handoffLine(r.out), /^! handoff: .*start the ingest node first/);
  r = await check(edge('tw.handoff.ok'));
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(handoffLine(r.out), /^✔ handoff: the hand-off topic tw\.handoff\.ok has 1 partition \(end offset 0\)/);
  r = await check(ingest('tw.handoff.wide'));
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(handoffLine(r.out), /^✘ handoff: the hand-off topic tw\.handoff\.wide has 3 partitions; it must have exactly 1/);
  r = await check({ role: 'edge', handoff: { kafka: { brokers: ['127.0.0.1:1'], topic: 'x' } } });
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(handoffLine(r.out), /^✘ handoff: cannot read the hand-off topic x at 127\.0\.0\.1:1 .*check handoff\.kafka\.brokers/);
});

/**
 * Kafka ingest: records per second from a Kafka topic into topic state, through the production
 * KafkaConnector (kafkajs behind our KafkaClient interface) and Pipeline/TopicStore, with one
 * partition and with several. Records are ~200-byte JSON values over a bounded key space, so the
 * run is a mix of new topics and deltas, like a price feed.
 *
 * The records are produced first; the timed part is the connector's start(): joining the group,
 * seeking to the earliest offsets and applying everything up to the end offsets that existed at
 * start. The broker runs on the same 2 cores (a real Apache Kafka 4.1 from the test harness).
 */
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { KafkaConnector } from '../../connectors/kafka/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { startKafka } from '../../test/support/kafka-broker.ts';
import { num, ratio } from '../lib/format.ts';
import { median } from '../lib/stats.ts';
import type { Suite, SuiteResult } from '../suite.ts';

const VENUES = ['XNAS', 'XNYS', 'XLON', 'XPAR', 'XTKS'];

/** A ~200-byte quote; `i` varies the numbers so most records change their topic. */
function record(i: number, keys: number): { key: string; value: string } {
  const k = i % keys;
  return {
    key: `SYM${k}`,
    value: JSON.stringify({
      venue: VENUES[k % VENUES.length],
      symbol: `SYM${k}`,
      bid: 100 + (i % 997) / 100,
      ask: 100.5 + (i % 991) / 100,
      bidSize: 100 * (1 + (i % 7)),
      askSize: 100 * (1 + (i % 5)),
      currency: 'USD',
      session: 'continuous trading',
      source: 'consolidated feed',
      ts: `2026-11-27T12:00:${String(i % 60).padStart(2, '0')}.000000Z`,
      seq: i,
    }),
  };
}

async function produce(brokers: string[], topic: string, partitions: number, records: number, keys: number): Promise<number> {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  let bytes = 0;
  const batch = 2000;
  for (let i = 0; i < records; i += batch) {
    const messages = [];
    for (let j = i; j < Math.min(records, i + batch); j++) {
      const r = record(j, keys);
      bytes += r.value.length;
      messages.push(r);
    }
    await producer.send({ topic, acks: 1, messages });
  }
  await producer.disconnect();
  return bytes / records;
}

interface Run {
  seconds: number;
  recordsPerSecond: number;
  cpuSeconds: number;
  topics: number;
}

async function consume(brokers: string[], topic: string, records: number, group: string): Promise<Run> {
  const store = new TopicStore();
  const pipeline = new Pipeline(store, new InProcessHandoff(store));
  const connector = new KafkaConnector(
    { brokers, groupId: group, topics: [{ topic, format: 'json', path: 'prices/{value.venue}/{key}' }] } as never,
    pipeline,
    { logger: pino({ level: 'silent' }) },
  );
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let first = 0;
  const probe = setInterval(() => {
    if (first === 0 && pipeline.updatesApplied > 0) first = performance.now();
  }, 5);
  await connector.start();
  const t1 = performance.now();
  clearInterval(probe);
  const cpu = process.cpuUsage(cpu0);
  const applied = pipeline.updatesApplied;
  await connector.stop();
  if (applied !== records) throw new Error(`kafka-ingest: applied ${applied} records, expected ${records}`);
  // From the first applied record: the group join and first fetch are not ingest throughput.
  const seconds = (t1 - (first || t0)) / 1000;
  return { seconds, recordsPerSecond: records / seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, topics: store.size };
}

export const suite: Suite = {
  name: 'kafka-ingest',
  title: 'Kafka ingest: records/s of ~200-byte JSON into topic state, one partition and several',
  async run(ctx): Promise<SuiteResult> {
    const records = ctx.quick ? 20_000 : 500_000;
    const keys = ctx.quick ? 2_000 : 50_000;
    const reps = ctx.quick ? 1 : 3;
    const layouts = [1, 3];
    ctx.log(`kafka-ingest: starting a broker; ${num(records)} records per topic, ${num(keys)} keys`);
    const broker = await startKafka({ log: (m) => ctx.log(`kafka-ingest: ${m}`) });
    try {
      const rows: Array<Array<string | number>> = [];
      const data: Record<string, unknown> = { records, keys, reps };
      const medians: Record<number, number> = {};
      for (const partitions of layouts) {
        const topic = `bench-prices-${partitions}p`;
        const avgBytes = await produce(broker.brokers, topic, partitions, records, keys);
        ctx.log(`kafka-ingest: produced ${num(records)} records (${avgBytes.toFixed(0)} B avg) to ${topic}`);
        const runs: Run[] = [];
        for (let r = 0; r < reps; r++) {
          const run = await consume(broker.brokers, topic, records, `bench-${partitions}p-${r}-${Date.now()}`);
          ctx.log(`kafka-ingest: ${partitions} partition(s), run ${r + 1}: ${num(run.recordsPerSecond)} records/s`);
          runs.push(run);
        }
        const rps = median(runs.map((x) => x.recordsPerSecond));
        medians[partitions] = rps;
        const cpuPerM = median(runs.map((x) => (x.cpuSeconds / records) * 1e6));
        rows.push([`${partitions}`, num(rps), num(cpuPerM, 1), num(runs[0].topics), avgBytes.toFixed(0)]);
        data[`p${partitions}`] = { avgValueBytes: avgBytes, runs };
      }
      const best = Math.min(...Object.values(medians));
      return {
        summary: `${num(records)} JSON records (~200 B each, ${num(keys)} distinct keys, so most records update an existing topic) produced to a topic with 1 and with 3 partitions on a local Apache Kafka 4.1 broker, then read by the KafkaConnector from the earliest offset into topic state (path prices/{value.venue}/{key}). Timed from the first applied record to the end of the catch-up; median of ${reps} run(s), each with a fresh consumer group and a fresh TopicStore.`,
        command: `npm run bench -- --only kafka-ingest${ctx.quick ? ' --quick' : ''}`,
        tables: [
          {
            title: 'Kafka ingest into topic state',
            columns: ['partitions', 'records/s (median)', 'CPU s per million records (tidewire process)', 'topics', 'avg value bytes'],
            rows,
            notes: [
              `3 partitions vs 1: ${ratio(medians[3], medians[1])}. The consumer applies partitions in one process, so extra partitions mostly add fetch parallelism, not CPU.`,
              'The broker, the producer (before timing) and tidewire share the same 2 cores.',
            ],
          },
        ],
        targets: [{ description: 'at least 50,000 records/s of ~200-byte JSON', met: best >= 50_000, measured: `${num(best)} records/s (slowest layout)` }],
        data,
        caveats: ctx.quick ? ['--quick: 20,000 records, one run per layout; start-up costs weigh more than in the full run.'] : [],
      };
    } finally {
      await broker.stop();
    }
  },
};

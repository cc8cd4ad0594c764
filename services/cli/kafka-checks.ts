/**
 * `tidewire check` for the kafka section: the brokers answer (through the connector's own client,
 * with the configured TLS and SASL), every exact topic and the dead-letter topic exist, and each
 * pattern matches something. Topic rules are the connector's (start-offsets.ts resolveTopics).
 * For `format: debezium` mappings it reads the topics' cleanup.policy: a compacted topic cannot
 * take Debezium's keyless truncate record (connectors/kafka/README.md, "Truncates").
 */
import { pino } from 'pino';
import { KAFKA_DEFAULTS, type KafkaAdmin, createKafkajsClient } from '../../connectors/kafka/index.ts';
import type { KafkaConfig } from '../config/config.ts';
import { errorMessage } from '../../core/errors.ts';
import { type CheckReport, fail, ok, warn } from './check-report.ts';

/** `check` should answer quickly; the connector itself waits kafka.connectTimeoutMs at start. */
const CHECK_TIMEOUT_MS = 10_000;

export async function checkKafka(config: KafkaConfig, report: CheckReport): Promise<void> {
  const timeoutMs = Math.min(config.connectTimeoutMs ?? KAFKA_DEFAULTS.connectTimeoutMs, CHECK_TIMEOUT_MS);
  const client = createKafkajsClient({
    brokers: config.brokers,
    clientId: config.clientId ?? KAFKA_DEFAULTS.clientId,
    ssl: config.ssl ?? KAFKA_DEFAULTS.ssl,
    sasl: config.sasl,
    logger: pino({ level: 'silent' }),
  });
  const admin = client.admin();
  try {
    await checkWith(admin, config, report, timeoutMs);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

async function checkWith(admin: KafkaAdmin, config: KafkaConfig, report: CheckReport, timeoutMs: number): Promise<void> {
  const brokers = config.brokers.join(',');
  let existing: string[];
  try {
    existing = await withTimeout(
      (async () => {
        await admin.connect();
        return admin.listTopics();
      })(),
      timeoutMs,
    );
  } catch (err) {
    report.add(
      fail(
        'kafka brokers',
        `cannot reach Kafka at ${brokers} (${errorMessage(err)}): check kafka.brokers (or TIDEWIRE_KAFKA_BROKERS), that the brokers run and that the addresses they advertise are reachable from here, and kafka.ssl / kafka.sasl`,
      ),
    );
    report.note('the Kafka topic checks need a broker: fix this one first');
    return;
  }
  const visible = existing.filter((t) => !t.startsWith('__'));
  report.add(ok('kafka brokers', `${brokers} answered (${visible.length} topics)`));

  const have = new Set(existing);
  const dlq = config.deadLetterTopic;
  let consumed = 0;
  /** The topics each Debezium mapping consumes, by mapping index. */
  const debezium = new Map<number, string[]>();
  config.topics.forEach((spec, i) => {
    if (spec.topic !== undefined) {
      const key = `kafka.topics.${i}.topic`;
      if (spec.topic === dlq) report.add(fail(key, `"${dlq}" is the dead-letter topic; tidewire does not consume it`));
      else if (have.has(spec.topic)) {
        consumed++;
        if (spec.format === 'debezium') debezium.set(i, [spec.topic]);
        report.add(ok(key, `topic "${spec.topic}" exists`));
      } else report.add(fail(key, `Kafka has no topic "${spec.topic}": create it, or fix the name`));
      return;
    }
    const key = `kafka.topics.${i}.pattern`;
    let re: RegExp;
    try {
      re = new RegExp(spec.pattern!);
    } catch (err) {
      report.add(fail(key, `${JSON.stringify(spec.pattern)} is not a valid regular expression: ${errorMessage(err)}`));
      return;
    }
    const matched = existing.filter((t) => !t.startsWith('__') && t !== dlq && re.test(t));
    consumed += matched.length;
    if (spec.format === 'debezium' && matched.length > 0) debezium.set(i, matched);
    if (matched.length === 0) report.add(warn(key, `${spec.pattern} matches no topic yet; topics created later are picked up at the next start`));
    else report.add(ok(key, `${spec.pattern} matches ${matched.length} topic(s): ${matched.slice(0, 5).join(', ')}${matched.length > 5 ? ', …' : ''}`));
  });
  if (consumed === 0) report.add(fail('kafka.topics', 'no Kafka topic matches any mapping: create the topics, or fix the names and patterns'));
  if (dlq !== undefined) {
    report.add(have.has(dlq) ? ok('kafka.deadLetterTopic', `topic "${dlq}" exists`) : fail('kafka.deadLetterTopic', `Kafka has no topic "${dlq}": create it, or fix the name`));
  }
  if (debezium.size > 0) await checkTruncates(admin, debezium, report, timeoutMs);
}

/**
 * Debezium writes a truncate as one record without a key; a compacted topic rejects it
 * (InvalidRecordException: Compacted topic cannot accept message without key) and the Debezium
 * task fails, stopping every table of the connector. Only with `skipped.operations=none` does it
 * write truncates at all (the default `t` skips them), which check cannot see from here.
 */
async function checkTruncates(admin: KafkaAdmin, debezium: ReadonlyMap<number, readonly string[]>, report: CheckReport, timeoutMs: number): Promise<void> {
  const topics = [...new Set([...debezium.values()].flat())];
  let configs: Map<string, Map<string, string>>;
  try {
    configs = await withTimeout(admin.describeTopicConfigs(topics, ['cleanup.policy']), timeoutMs);
  } catch (err) {
    report.add(
      warn(
        'kafka topic configs',
        `cannot read cleanup.policy of the Debezium topics (${errorMessage(err)}): grant DescribeConfigs on them so check can tell whether truncates can reach tidewire`,
      ),
    );
    return;
  }
  for (const [i, names] of debezium) {
    const key = `kafka.topics.${i}.format`;
    const compacted = names.filter((t) => (configs.get(t)?.get('cleanup.policy') ?? '').split(',').includes('compact'));
    if (compacted.length > 0) {
      report.add(
        warn(
          key,
          `${compacted.length === 1 ? `topic "${compacted[0]}" is` : `${compacted.length} topics are`} compacted (cleanup.policy=compact${compacted.length > 1 ? `: ${list(compacted)}` : ''}): ` +
            "Debezium's truncate record has no key, so the broker rejects it and the Debezium task fails for every table. " +
            'Keep skipped.operations=t (the default) on that connector and empty tables with DELETE, not TRUNCATE; ' +
            'or, for truncates to reach tidewire, use cleanup.policy=delete with retention.ms=-1 (tidewire rebuilds from the earliest offset) and skipped.operations=none',
        ),
      );
    } else {
      report.add(ok(key, `debezium topics not compacted (${list(names)}): truncates reach tidewire when the Debezium connector has skipped.operations=none`));
    }
  }
}

function list(names: readonly string[]): string {
  return `${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`;
}

/** `work`, or a rejection after `ms`: `check` should answer quickly. */
async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  work.catch(() => {}); // when the timeout wins, nothing waits for it any more
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

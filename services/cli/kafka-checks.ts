/**
 * `tidewire check` for the kafka section: the brokers answer (through the connector's own client,
 * with the configured TLS and SASL), every exact topic and the dead-letter topic exist, and each
 * pattern matches something. Topic rules are the connector's (start-offsets.ts resolveTopics).
 */
import { pino } from 'pino';
import { KAFKA_DEFAULTS, createKafkajsClient } from '../../connectors/kafka/index.ts';
import type { KafkaConfig } from '../config/config.ts';
import { errorMessage } from '../errors.ts';
import { type CheckReport, fail, ok, warn } from './check-report.ts';

/** `check` should answer quickly; the connector itself waits kafka.connectTimeoutMs at start. */
const CHECK_TIMEOUT_MS = 10_000;

export async function checkKafka(config: KafkaConfig, report: CheckReport): Promise<void> {
  const brokers = config.brokers.join(',');
  const timeoutMs = Math.min(config.connectTimeoutMs ?? KAFKA_DEFAULTS.connectTimeoutMs, CHECK_TIMEOUT_MS);
  const client = createKafkajsClient({
    brokers: config.brokers,
    clientId: config.clientId ?? KAFKA_DEFAULTS.clientId,
    ssl: config.ssl ?? KAFKA_DEFAULTS.ssl,
    sasl: config.sasl,
    logger: pino({ level: 'silent' }),
  });
  const admin = client.admin();
  let existing: string[];
  let timer: NodeJS.Timeout | undefined;
  try {
    const work = (async () => {
      await admin.connect();
      return admin.listTopics();
    })();
    work.catch(() => {}); // when the timeout wins, nothing waits for it any more
    const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)));
    existing = await Promise.race([work, expired]);
  } catch (err) {
    report.add(
      fail(
        'kafka brokers',
        `cannot reach Kafka at ${brokers} (${errorMessage(err)}): check kafka.brokers (or TIDEWIRE_KAFKA_BROKERS), that the brokers run and that the addresses they advertise are reachable from here, and kafka.ssl / kafka.sasl`,
      ),
    );
    report.note('the Kafka topic checks need a broker: fix this one first');
    return;
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => {});
  }
  const visible = existing.filter((t) => !t.startsWith('__'));
  report.add(ok('kafka brokers', `${brokers} answered (${visible.length} topics)`));

  const have = new Set(existing);
  const dlq = config.deadLetterTopic;
  let consumed = 0;
  config.topics.forEach((spec, i) => {
    if (spec.topic !== undefined) {
      const key = `kafka.topics.${i}.topic`;
      if (spec.topic === dlq) report.add(fail(key, `"${dlq}" is the dead-letter topic; tidewire does not consume it`));
      else if (have.has(spec.topic)) {
        consumed++;
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
    if (matched.length === 0) report.add(warn(key, `${spec.pattern} matches no topic yet; topics created later are picked up at the next start`));
    else report.add(ok(key, `${spec.pattern} matches ${matched.length} topic(s): ${matched.slice(0, 5).join(', ')}${matched.length > 5 ? ', …' : ''}`));
  });
  if (consumed === 0) report.add(fail('kafka.topics', 'no Kafka topic matches any mapping: create the topics, or fix the names and patterns'));
  if (dlq !== undefined) {
    report.add(have.has(dlq) ? ok('kafka.deadLetterTopic', `topic "${dlq}" exists`) : fail('kafka.deadLetterTopic', `Kafka has no topic "${dlq}": create it, or fix the name`));
  }
}

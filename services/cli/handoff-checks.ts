/**
 * `tidewire check` for `role: ingest` and `role: edge`: the hand-off topic's brokers answer, and
 * the topic is one the log can use — one partition (the log is ordered), or not there yet, which
 * the ingest node creates at its start. Changes nothing.
 */
import type { Config } from '../config/config.ts';
import { errorMessage } from '../../core/errors.ts';
import { kafkaHandoffLog } from '../handoff/kafkajs-handoff-log.ts';
import { type CheckReport, fail, ok, warn } from './check-report.ts';

export async function checkHandoff(config: Config, report: CheckReport): Promise<void> {
  const kafka = config.handoff?.kafka;
  if (kafka === undefined || (config.role !== 'ingest' && config.role !== 'edge')) return;
  const log = kafkaHandoffLog({ brokers: kafka.brokers, topic: kafka.topic, clientId: kafka.clientId });
  let topic: Awaited<ReturnType<typeof log.inspect>>;
  try {
    topic = await log.inspect();
  } catch (err) {
    report.add(fail('handoff', `cannot read the hand-off topic ${kafka.topic} at ${kafka.brokers.join(',')} (${errorMessage(err)}): check handoff.kafka.brokers, and that the brokers run`));
    return;
  }
  if (!topic.exists) {
    if (config.role === 'ingest') report.add(ok('handoff', `the hand-off topic ${kafka.topic} does not exist yet: this node creates it at start (1 partition, retention ${kafka.retentionMs} ms)`));
    else report.add(warn('handoff', `the hand-off topic ${kafka.topic} does not exist yet: start the ingest node first (it creates it); this edge waits for it, not ready until then`));
    return;
  }
  if (topic.partitions !== 1) {
    report.add(fail('handoff', `the hand-off topic ${kafka.topic} has ${topic.partitions} partitions; it must have exactly 1 (the log is ordered): delete it and let the ingest node create it, or set handoff.kafka.topic to another name`));
    return;
  }
  report.add(ok('handoff', `the hand-off topic ${kafka.topic} has 1 partition (end offset ${topic.end})`));
}

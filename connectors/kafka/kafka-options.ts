/**
 * The Kafka connector's settings with their defaults, validated at construction. The defaults
 * match schemas/config.schema.json (a unit test holds them together), so a connector built
 * directly, without parseConfig, behaves like one built from a configuration file.
 */
import type { KafkaConfig, KafkaSaslConfig, KafkaTopicMapping } from './kafka-settings.ts';
import { ConfigError } from '../../core/errors.ts';

export const KAFKA_DEFAULTS = {
  clientId: 'tidewire',
  groupId: 'tidewire',
  ssl: false,
  /** 1 MiB: a larger value is a bad record, dead-lettered without being parsed. */
  maxValueBytes: 1_048_576,
  startFrom: 'earliest',
  connectTimeoutMs: 30_000,
  sessionTimeoutMs: 10_000,
} as const;

export interface KafkaSettings {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly groupId: string;
  readonly ssl: boolean;
  readonly sasl: KafkaSaslConfig | undefined;
  readonly deadLetterTopic: string | undefined;
  readonly maxValueBytes: number;
  readonly startFrom: 'earliest' | 'committed';
  readonly connectTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  /** Null: feeds are never stale. */
  readonly staleAfterMs: number | null;
  readonly topics: readonly KafkaTopicMapping[];
}

export function resolveKafkaSettings(config: KafkaConfig): KafkaSettings {
  if (!config || typeof config !== 'object') throw new ConfigError('kafka', 'must be an object');
  const brokers = config.brokers;
  if (!Array.isArray(brokers) || brokers.length === 0 || !brokers.every((b) => typeof b === 'string' && /^\S+:\d{1,5}$/.test(b))) {
    throw new ConfigError('kafka.brokers', 'must list at least one broker as host:port (or set TIDEWIRE_KAFKA_BROKERS)');
  }
  if (!Array.isArray(config.topics) || config.topics.length === 0) throw new ConfigError('kafka.topics', 'must map at least one topic');
  const s: KafkaSettings = {
    brokers,
    clientId: config.clientId ?? KAFKA_DEFAULTS.clientId,
    groupId: config.groupId ?? KAFKA_DEFAULTS.groupId,
    ssl: config.ssl ?? KAFKA_DEFAULTS.ssl,
    sasl: config.sasl,
    deadLetterTopic: config.deadLetterTopic,
    maxValueBytes: config.maxValueBytes ?? KAFKA_DEFAULTS.maxValueBytes,
    startFrom: config.startFrom ?? KAFKA_DEFAULTS.startFrom,
    connectTimeoutMs: config.connectTimeoutMs ?? KAFKA_DEFAULTS.connectTimeoutMs,
    sessionTimeoutMs: config.sessionTimeoutMs ?? KAFKA_DEFAULTS.sessionTimeoutMs,
    staleAfterMs: config.staleAfterMs ?? null,
    topics: config.topics,
  };
  if (s.clientId === '') throw new ConfigError('kafka.clientId', 'must not be empty');
  if (s.groupId === '') throw new ConfigError('kafka.groupId', 'must not be empty');
  if (s.deadLetterTopic === '') throw new ConfigError('kafka.deadLetterTopic', 'must not be empty');
  if (!Number.isInteger(s.maxValueBytes) || s.maxValueBytes < 1) throw new ConfigError('kafka.maxValueBytes', 'must be a positive integer');
  if (s.startFrom !== 'earliest' && s.startFrom !== 'committed') throw new ConfigError('kafka.startFrom', 'must be earliest or committed');
  if (!Number.isInteger(s.connectTimeoutMs) || s.connectTimeoutMs < 100) throw new ConfigError('kafka.connectTimeoutMs', 'must be an integer of at least 100');
  if (!Number.isInteger(s.sessionTimeoutMs) || s.sessionTimeoutMs < 6_000 || s.sessionTimeoutMs > 300_000) {
    throw new ConfigError('kafka.sessionTimeoutMs', 'must be between 6000 and 300000 (the brokers refuse others by default)');
  }
  if (s.staleAfterMs !== null && (!Number.isInteger(s.staleAfterMs) || s.staleAfterMs < 100 || s.staleAfterMs > 86_400_000)) {
    throw new ConfigError('kafka.staleAfterMs', 'must be an integer between 100 and 86400000 (a day), or absent to never call a feed stale');
  }
  s.topics.forEach((t, i) => {
    if (t.heartbeatTopic === undefined) return;
    if (typeof t.heartbeatTopic !== 'string' || t.heartbeatTopic === '') throw new ConfigError(`kafka.topics.${i}.heartbeatTopic`, 'must be a Kafka topic name, e.g. __debezium-heartbeat.<topic.prefix>');
    if (t.heartbeatTopic === t.topic) throw new ConfigError(`kafka.topics.${i}.heartbeatTopic`, 'must not be the mapped topic itself');
    if (t.heartbeatTopic === s.deadLetterTopic) throw new ConfigError(`kafka.topics.${i}.heartbeatTopic`, 'must not be the dead-letter topic');
  });
  if (s.sasl) {
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(s.sasl.mechanism)) throw new ConfigError('kafka.sasl.mechanism', 'must be plain, scram-sha-256 or scram-sha-512');
    if (!s.sasl.username) throw new ConfigError('kafka.sasl.username', 'is required');
    if (typeof s.sasl.password !== 'string') throw new ConfigError('kafka.sasl.password', 'is required (or set TIDEWIRE_KAFKA_PASSWORD)');
  }
  return s;
}

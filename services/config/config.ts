/**
 * Loads the configuration file (YAML or JSON), applies environment overrides for secrets and
 * validates the result against schemas/config.schema.json. Errors name the offending key.
 */
import { readFileSync } from 'node:fs';
import AjvModule, { type ErrorObject } from 'ajv';
import YAML from 'yaml';
import schema from '../../schemas/config.schema.json' with { type: 'json' };
import { ConfigError } from '../errors.ts';

export interface ServerConfig {
  host: string;
  port: number;
  maxPayloadBytes: number;
  sendQueueBytes: number;
  flushIntervalMs: number;
  maxSubscriptionsPerSession: number;
  maxMessagesPerSecond: number;
}

export interface TableMapping {
  table: string;
  path: string;
  include?: string[];
  exclude?: string[];
}

export interface PostgresConfig {
  url: string;
  slot: string;
  publication: string;
  snapshotBatchRows: number;
  statusIntervalMs: number;
  tables: TableMapping[];
}

/** Decoding of a Kafka topic's records: plain JSON values, or Debezium change-event envelopes. */
export type KafkaFormat = 'json' | 'debezium';

/** One Kafka topic (or a pattern of topics) mapped onto topic paths. */
export interface KafkaTopicMapping {
  /** The Kafka topic's exact name; exactly one of `topic` and `pattern`. */
  topic?: string;
  /** A regular expression (JavaScript syntax) matched against topic names at start, e.g. `^prices\.` (in YAML `'^prices\.'`). */
  pattern?: string;
  format: KafkaFormat;
  /** Path template over `{key}`, `{key.f}`, `{value.f.g}`, `{headers.h}`, `{topic}`, `{partition}`. */
  path: string;
  /** Only these top-level value fields go into the topic value. */
  include?: string[];
  /** These top-level value fields are left out of the topic value. */
  exclude?: string[];
  /** Every topic of this mapping belongs to this tenant. */
  tenant?: string;
  /** The tenant is read from the record, e.g. `value.tenant_id` or `headers.tenant`. */
  tenantField?: string;
}

export interface KafkaSaslConfig {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  /** Overridden by TIDEWIRE_KAFKA_PASSWORD. */
  password: string;
}

/** The Kafka connector. Optional settings are filled in by parseConfig (and by the connector when built directly). */
export interface KafkaConfig {
  /** Bootstrap brokers, `host:port`. Overridden by TIDEWIRE_KAFKA_BROKERS (comma-separated). */
  brokers: string[];
  clientId?: string;
  groupId?: string;
  ssl?: boolean;
  sasl?: KafkaSaslConfig;
  deadLetterTopic?: string;
  maxValueBytes?: number;
  startFrom?: 'earliest' | 'committed';
  connectTimeoutMs?: number;
  sessionTimeoutMs?: number;
  topics: KafkaTopicMapping[];
}

export interface Config {
  server: ServerConfig;
  postgres?: PostgresConfig;
  kafka?: KafkaConfig;
  /** Settings for SecurityManager.fromConfig: inline, or `{ file }`; validated there against schemas/security.schema.json. */
  security?: { file: string } | Record<string, unknown>;
  log: { level: string };
}

// ajv is CommonJS; its default export arrives wrapped under ESM.
const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validate = ajv.compile(schema);

/** Validates a configuration object, filling in defaults. Throws ConfigError naming the first bad key. */
export function parseConfig(input: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const raw = (input ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('(root)', 'the configuration must be an object');
  const cfg = structuredClone(raw);
  if (env.TIDEWIRE_DATABASE_URL) {
    if (cfg.postgres && typeof cfg.postgres === 'object') (cfg.postgres as Record<string, unknown>).url = env.TIDEWIRE_DATABASE_URL;
  }
  if (cfg.kafka && typeof cfg.kafka === 'object') {
    const kafka = cfg.kafka as Record<string, unknown>;
    if (env.TIDEWIRE_KAFKA_BROKERS) kafka.brokers = env.TIDEWIRE_KAFKA_BROKERS.split(',').map((b) => b.trim()).filter(Boolean);
    if (env.TIDEWIRE_KAFKA_PASSWORD && kafka.sasl && typeof kafka.sasl === 'object') (kafka.sasl as Record<string, unknown>).password = env.TIDEWIRE_KAFKA_PASSWORD;
  }
  cfg.server ??= {};
  cfg.log ??= {};
  if (!validate(cfg)) throw toConfigError(validate.errors ?? []);
  return cfg as unknown as Config;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, `cannot read the configuration file (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(file, `is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(parsed, env);
}

function toConfigError(errors: ErrorObject[]): ConfigError {
  // The most specific error is the most useful one: prefer the deepest instance path.
  const e = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
  const key = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(root)';
  let reason = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    return new ConfigError(key === '(root)' ? extra : `${key}.${extra}`, 'is not a known setting (check its spelling against schemas/config.schema.json)');
  }
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    return new ConfigError(key === '(root)' ? missing : `${key}.${missing}`, 'is required');
  }
  if (e.keyword === 'enum') reason = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return new ConfigError(key, reason);
}

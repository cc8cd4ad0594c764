/**
 * Loads the configuration file (YAML or JSON), applies environment overrides for secrets and
 * validates the result against schemas/config.schema.json. Errors name the offending key.
 */
import { readFileSync } from 'node:fs';
import AjvModule, { type ErrorObject } from 'ajv';
import schema from '../../schemas/config.schema.json' with { type: 'json' };
import { ConfigError } from '../../core/errors.ts';
import { parseConfigText } from './config-text.ts';
import type { KafkaConfig } from '../../connectors/kafka/kafka-settings.ts';
import type { PostgresConfig } from '../../connectors/postgres/postgres-options.ts';
import type { DistributionOptions } from '../distribution/server-limits.ts';

/** The distribution service owns its options; the file's `server` section is exactly them. */
export type ServerConfig = DistributionOptions;


/** `log.format`: JSON lines, human-readable lines, or pretty in a terminal and JSON otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';

// Each connector owns its settings' types; the configuration file's sections are exactly them.
export type { PostgresConfig, TableMapping } from '../../connectors/postgres/postgres-options.ts';
export type { KafkaConfig, KafkaFormat, KafkaSaslConfig, KafkaTopicMapping } from '../../connectors/kafka/kafka-settings.ts';
/** `role`: what this node does (issue #15); see schemas/config.schema.json and docs/OPERATIONS.md. */
export type Role = 'all' | 'ingest' | 'edge';

/** `handoff.kafka`: the hand-off topic between an ingest node and its edges. */
export interface HandoffKafkaConfig {
  brokers: string[];
  topic: string;
  clientId: string;
  retentionMs: number;
}

export interface Config {
  /** Absent in configs built without parseConfig: `all`. */
  role?: Role;
  handoff?: { kafka?: HandoffKafkaConfig };
  server: ServerConfig;
  postgres?: PostgresConfig;
  kafka?: KafkaConfig;
  /** Settings for SecurityManager.fromConfig: inline, or `{ file }`; validated there against schemas/security.schema.json. */
  security?: { file: string } | Record<string, unknown>;
  /** `level` is overridden by TIDEWIRE_LOG_LEVEL, `format` by TIDEWIRE_LOG_FORMAT. */
  log: { level: string; format: LogFormat; progressIntervalMs: number };
  /** GET /metrics (Prometheus) and the replication-lag poll. */
  metrics: { enabled: boolean; replicationLagIntervalMs: number };
  /** Durable topic state (services/state); absent or `memory: true`: in memory. `start --config` fills in `dir`. */
  state?: StateConfig;
}

export interface StateConfig {
  /** The store's folder; relative paths are resolved against the working directory. */
  dir?: string;
  memory?: boolean;
  /** Topics changed last kept on the heap once durable (services/topics/stored-topic-index.ts). */
  cacheTopics?: number;
  /** Removals remembered for resumes from a position (services/topics/removal-log.ts). */
  removalLog?: number;
}

// ajv is CommonJS; its default export arrives wrapped under ESM.
const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
// verbose: errors carry the offending value and the schema around it (for "did you mean" and x-messages).
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const validate = ajv.compile(schema);

/** Validates a configuration object, filling in defaults. Throws ConfigError naming the first bad key. */
export function parseConfig(input: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const raw = (input ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('(root)', 'the configuration must be an object');
  const cfg = structuredClone(raw);
  /** Settings taken from the environment, so an error about one names the variable to fix. */
  const fromEnv = new Map<string, string>();
  if (env.TIDEWIRE_DATABASE_URL) {
    if (cfg.postgres && typeof cfg.postgres === 'object') {
      (cfg.postgres as Record<string, unknown>).url = env.TIDEWIRE_DATABASE_URL;
      fromEnv.set('postgres.url', 'TIDEWIRE_DATABASE_URL');
    }
  }
  if (cfg.kafka && typeof cfg.kafka === 'object') {
    const kafka = cfg.kafka as Record<string, unknown>;
    if (env.TIDEWIRE_KAFKA_BROKERS) kafka.brokers = env.TIDEWIRE_KAFKA_BROKERS.split(',').map((b) => b.trim()).filter(Boolean);
    if (env.TIDEWIRE_KAFKA_PASSWORD && kafka.sasl && typeof kafka.sasl === 'object') (kafka.sasl as Record<string, unknown>).password = env.TIDEWIRE_KAFKA_PASSWORD;
  }
  cfg.server ??= {};
  cfg.log ??= {};
  cfg.metrics ??= {};
  cfg.state ??= {};
  if (env.TIDEWIRE_LOG_LEVEL && cfg.log && typeof cfg.log === 'object') {
    (cfg.log as Record<string, unknown>).level = env.TIDEWIRE_LOG_LEVEL;
    fromEnv.set('log.level', 'TIDEWIRE_LOG_LEVEL');
  }
  if (env.TIDEWIRE_LOG_FORMAT && cfg.log && typeof cfg.log === 'object') {
    (cfg.log as Record<string, unknown>).format = env.TIDEWIRE_LOG_FORMAT;
    fromEnv.set('log.format', 'TIDEWIRE_LOG_FORMAT');
  }
  if (!validate(cfg)) {
    // Every problem at once, so a file is fixed in one pass rather than one error per run.
    const errors = toConfigErrors(validate.errors ?? []).map((err) => {
      const variable = [...fromEnv].find(([key]) => err.key === key || err.key.startsWith(`${key}.`))?.[1];
      return variable ? new ConfigError(err.key, `${err.message.slice(err.key.length + 2)} (it comes from ${variable})`) : err;
    });
    throw errors.length === 1 ? errors[0] : new ConfigErrors(errors);
  }
  const config = cfg as unknown as Config;
  const roleErrors = checkRole(config);
  if (roleErrors.length > 0) throw roleErrors.length === 1 ? roleErrors[0] : new ConfigErrors(roleErrors);
  return config;
}

/** What the schema alone cannot say: which sections a role needs and which it refuses. */
function checkRole(config: Config): ConfigError[] {
  const role = config.role ?? 'all';
  const errors: ConfigError[] = [];
  if (role === 'all') {
    if (config.handoff) errors.push(new ConfigError('handoff', 'is used only by role: ingest or role: edge: set role, or remove the handoff section'));
    return errors;
  }
  if (!config.handoff?.kafka) {
    const what = role === 'edge' ? 'the edge replicates its topics from' : 'the ingest node publishes every batch to';
    errors.push(new ConfigError('handoff.kafka', `is required with role: ${role}: the brokers and topic of the hand-off log ${what} (give the ingest node and its edges the same handoff.kafka)`));
  }
  if (role === 'edge') {
    for (const section of ['postgres', 'kafka'] as const) {
      if (config[section]) errors.push(new ConfigError(section, `role: edge reads no source, it replicates the ingest node's topics: remove the ${section} section (the ingest node reads it), or set role: ingest`));
    }
    if (config.state?.dir && config.state.memory !== true) {
      errors.push(new ConfigError('state.dir', 'role: edge keeps its topic state in memory and rebuilds it from the hand-off log at each start: remove state.dir (or set state.memory: true)'));
    }
  }
  return errors;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, `cannot read the configuration file (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  return parseConfig(parseConfigText(file, text), env);
}

/**
 * Several problems in one configuration: each is a ConfigError of its own (`errors`); the message
 * lists them all, one per line. `key` is the first one's.
 */
export class ConfigErrors extends ConfigError {
  readonly errors: readonly ConfigError[];
  constructor(errors: readonly ConfigError[]) {
    super(errors[0].key, 'has problems');
    this.name = 'ConfigErrors';
    this.errors = errors;
    this.message = `the configuration has ${errors.length} problems:\n${errors.map((e) => `  ${e.message}`).join('\n')}`;
  }
}

/** One ConfigError per problem ajv found, the most specific first, never two for one setting. */
function toConfigErrors(errors: ErrorObject[]): ConfigError[] {
  // A oneOf's branches fail for their own reasons ("must have required property 'topic'"); only
  // the oneOf error itself says what to do, so the branch errors under it are dropped. An `if`
  // error only says "must match then": the error of its `then` says what.
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const relevant = errors.filter((e) => e.keyword !== 'if' && !oneOfs.some((p) => e.schemaPath.startsWith(p)));
  // The most specific error is the most useful one: the deepest instance paths first.
  const depth = (e: ErrorObject) => e.instancePath.split('/').length;
  const byKey = new Map<string, ConfigError>();
  for (const e of [...(relevant.length > 0 ? relevant : errors)].sort((a, b) => depth(b) - depth(a))) {
    const err = toConfigError(e);
    if (!byKey.has(err.key)) byKey.set(err.key, err);
  }
  return [...byKey.values()];
}

function toConfigError(e: ErrorObject): ConfigError {
  const key = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(root)';
  let reason = e.message ?? 'is invalid';
  // The schema can word a message itself: "x-messages": { "<keyword>": "..." } beside the keyword.
  const custom = (e.parentSchema as { 'x-messages'?: Record<string, string> } | undefined)?.['x-messages']?.[e.keyword];
  if (custom) return new ConfigError(key, custom);
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
    const guess = closest(extra, known);
    const hint = guess ? `did you mean "${guess}"?` : `the settings here are ${known.join(', ')}`;
    return new ConfigError(key === '(root)' ? extra : `${key}.${extra}`, `is not a known setting: ${hint} (see schemas/config.schema.json)`);
  }
  if (e.keyword === 'type') reason = `must be ${(e.params as { type: string }).type}, not ${describeValue(e.data)}`;
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    return new ConfigError(key === '(root)' ? missing : `${key}.${missing}`, 'is required');
  }
  if (e.keyword === 'enum') reason = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return new ConfigError(key, reason);
}

/** The known name nearest to a misspelt one (edit distance at most a third of its length), if any. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

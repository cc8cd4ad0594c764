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

export interface Config {
  server: ServerConfig;
  postgres?: PostgresConfig;
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

/**
 * The security configuration: typed from schemas/security.schema.json, read inline or from its
 * own YAML/JSON file (`security: { file: ./security.yaml }`), with secrets from the environment,
 * validated by the schema and then by the checks a schema cannot express (a secret for HS*, a
 * key for RS*, PS*, ES* and EdDSA, the anonymous role exists). Errors name the offending key.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import AjvModule, { type ErrorObject } from 'ajv';
import YAML from 'yaml';
import schema from '../../schemas/security.schema.json' with { type: 'json' };
import { ConfigError } from '../../core/errors.ts';

export type JwtAlgorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA';

export interface JwtSettings {
  algorithms: JwtAlgorithm[];
  /** HS* shared secret. Overridden by TIDEWIRE_JWT_SECRET. */
  secret?: string;
  /** PEM (SPKI) text or a JWK (object or JSON text). Overridden by TIDEWIRE_JWT_PUBLIC_KEY. */
  publicKey?: string | Record<string, unknown>;
  jwksUrl?: string;
  jwksCooldownMs: number;
  jwksCacheMaxAgeMs: number;
  jwksTimeoutMs: number;
  issuer?: string | string[];
  audience?: string | string[];
  rolesClaim: string;
  tenantClaim: string;
  clockToleranceSec: number;
  requireExpiry: boolean;
  maxTokenBytes: number;
}

export type FieldRule = { include: string[]; exclude?: undefined } | { exclude: string[]; include?: undefined };

export interface ReadGrantSpec {
  pattern: string;
  fields?: FieldRule;
}

export interface RoleSpec {
  description?: string;
  read?: Array<string | ReadGrantSpec>;
  include?: string[];
  /** `tenant`: its own tenant; `server`: reload, /metrics, /health detail. `true` is an older spelling of `tenant`. */
  admin?: boolean | AdminScope;
}

/** What an admin role may act on: its token's tenant, or the whole server. */
export type AdminScope = 'tenant' | 'server';

export interface TenantLimits {
  connections: number;
  subscriptionsPerSession: number;
  messagesPerSecond: number;
}

export interface SecurityConfig {
  jwt?: JwtSettings;
  anonymous?: { role: string; tenant: string };
  roles: Record<string, RoleSpec>;
  limits?: { default?: Partial<TenantLimits>; tenants?: Record<string, Partial<TenantLimits>> };
  reload?: { minIntervalMs?: number };
}

/** Default least time between two reloads over POST /admin/reload. */
export const DEFAULT_RELOAD_MIN_INTERVAL_MS = 1_000;

/** What `security:` holds in the main configuration: the settings themselves, or `{ file }`. */
export type SecuritySource = SecurityConfig | { file: string };

export const DEFAULT_TENANT_LIMITS: Readonly<TenantLimits> = Object.freeze({
  connections: 10_000,
  subscriptionsPerSession: 1_000,
  messagesPerSecond: 200,
});

export interface LoadedSecurityConfig {
  readonly config: SecurityConfig;
  /** The file it was read from, for reloads; null when given inline. */
  readonly file: string | null;
}

export interface LoadOptions {
  /** Relative `file` paths are resolved against this folder (the main config file's). Default: cwd. */
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
}

// ajv is CommonJS; its default export arrives wrapped under ESM.
const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validate = ajv.compile(schema);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads, completes and validates a security configuration.
 * @example
 * const { config } = loadSecurityConfig({ file: './security.yaml' }, { baseDir: '/etc/tidewire' });
 */
export function loadSecurityConfig(source: unknown, options: LoadOptions = {}): LoadedSecurityConfig {
  const env = options.env ?? process.env;
  if (!isRecord(source)) throw new ConfigError('security', 'must be an object: the settings, or { file: <path> }');
  let raw: unknown = source;
  let file: string | null = null;
  let prefix = 'security';
  if (Object.hasOwn(source, 'file')) {
    if (Object.keys(source).length !== 1 || typeof source.file !== 'string' || source.file === '') {
      throw new ConfigError('security.file', 'must be the only key, a path to a YAML or JSON file (or give the settings inline instead)');
    }
    file = isAbsolute(source.file) ? source.file : resolve(options.baseDir ?? process.cwd(), source.file);
    raw = readSecurityFile(file);
    prefix = file;
  }
  if (!isRecord(raw)) throw new ConfigError(prefix, 'must be an object with at least `roles`');
  const cfg = structuredClone(raw);
  if (isRecord(cfg.jwt)) {
    if (env.TIDEWIRE_JWT_SECRET) cfg.jwt.secret = env.TIDEWIRE_JWT_SECRET;
    if (env.TIDEWIRE_JWT_PUBLIC_KEY) cfg.jwt.publicKey = env.TIDEWIRE_JWT_PUBLIC_KEY;
  }
  if (!validate(cfg)) throw toConfigError(prefix, validate.errors ?? []);
  const config = cfg as unknown as SecurityConfig;
  check(config, prefix);
  return { config, file };
}

function readSecurityFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, `cannot read the security file (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  const json = /\.json$/i.test(file);
  try {
    return json ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(file, `is not valid ${json ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { cause: err });
  }
}

/** The checks the schema cannot express. Role graphs and patterns are checked when compiled (role-graph.ts). */
function check(config: SecurityConfig, prefix: string): void {
  const jwt = config.jwt;
  if (!jwt && !config.anonymous) {
    throw new ConfigError(`${prefix}.jwt`, 'is required (or set anonymous: { role, tenant } to serve public topics only)');
  }
  if (jwt) {
    const hmac = jwt.algorithms.some((a) => a.startsWith('HS'));
    const asymmetric = jwt.algorithms.some((a) => !a.startsWith('HS'));
    if (hmac && !jwt.secret) {
      throw new ConfigError(`${prefix}.jwt.secret`, `is required for ${jwt.algorithms.filter((a) => a.startsWith('HS')).join(', ')}: set TIDEWIRE_JWT_SECRET (at least 32 characters)`);
    }
    if (!hmac && jwt.secret) throw new ConfigError(`${prefix}.jwt.secret`, 'is set but no HS* algorithm is allowed: add HS256 to jwt.algorithms or remove the secret');
    if (asymmetric && !jwt.publicKey && !jwt.jwksUrl) {
      throw new ConfigError(`${prefix}.jwt.publicKey`, 'or jwt.jwksUrl is required for RS*/PS*/ES*/EdDSA algorithms (or set TIDEWIRE_JWT_PUBLIC_KEY)');
    }
    if (!asymmetric && (jwt.publicKey || jwt.jwksUrl)) {
      throw new ConfigError(`${prefix}.jwt.algorithms`, 'allows only HS* algorithms, but a public key or JWKS URL is set: add the key\'s algorithm (e.g. RS256)');
    }
  }
  if (config.anonymous && !Object.hasOwn(config.roles, config.anonymous.role)) {
    throw new ConfigError(`${prefix}.anonymous.role`, `names the role "${config.anonymous.role}", which is not defined under roles`);
  }
}

/** The limits of one tenant: its own entry over `default` over the built-in defaults. */
export function tenantLimits(config: SecurityConfig, tenant: string): TenantLimits {
  const own = config.limits?.tenants && Object.hasOwn(config.limits.tenants, tenant) ? config.limits.tenants[tenant] : undefined;
  return { ...DEFAULT_TENANT_LIMITS, ...config.limits?.default, ...own };
}

function toConfigError(prefix: string, errors: ErrorObject[]): ConfigError {
  // oneOf failures report every branch; the deepest path is the most useful one.
  const e = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
  const path = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  const key = path ? `${prefix}.${path}` : prefix;
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      return new ConfigError(`${key}.${extra}`, 'is not a known setting (check its spelling against schemas/security.schema.json)');
    }
    case 'required':
      return new ConfigError(`${key}.${(e.params as { missingProperty: string }).missingProperty}`, 'is required');
    case 'enum':
      return new ConfigError(key, `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`);
    case 'pattern':
      return new ConfigError(key, `${e.message ?? 'does not match its pattern'}`);
  }
  return new ConfigError(key, e.message ?? 'is invalid');
}

/**
 * The security service: turns a bearer token into a Principal (who, which tenant, which roles),
 * a Principal into the PermissionSet its sessions share, and applies configuration reloads. It
 * owns no sockets: the distribution server asks it and re-evaluates its sessions when told the
 * configuration changed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, errorMessage } from '../../core/errors.ts';
import { AuditLog, type AuthChannel } from './audit.ts';
import { rolesFrom, tenantFrom } from './claims.ts';
import { type Grant, instantiate } from './grant-pattern.ts';
import { PermissionSet } from './permission-set.ts';
import { type CompiledRole, compileRoles, widest } from './role-graph.ts';
import { type AdminScope, DEFAULT_RELOAD_MIN_INTERVAL_MS, type LoadOptions, type SecurityConfig, type SecuritySource, type TenantLimits, loadSecurityConfig, tenantLimits } from './security-config.ts';
import { TenantConnections } from './tenant-connections.ts';
import { type AuthFailureReason, TokenVerifier } from './token-verifier.ts';

/** An authenticated (or anonymous) client. Immutable: a refreshed token gives a new Principal. */
export interface Principal {
  readonly subject: string;
  readonly tenant: string;
  /** Role names from the token, sorted (names the configuration does not define grant nothing). */
  readonly roles: readonly string[];
  /** The verified claims, kept so permissions can be derived again after a reload. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** When a session on this token must end (ms since epoch: exp + clock tolerance); null: never. */
  readonly expiresAt: number | null;
  readonly anonymous: boolean;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: AuthFailureReason; detail: string };

export interface AuthContext {
  readonly channel: AuthChannel;
  readonly remote?: string;
  readonly session?: string;
}

export interface ReloadSummary {
  readonly generation: number;
  readonly roles: number;
  /** The security file's name (never its directory: answers must not reveal the server's layout), or `inline`. */
  readonly source: string;
}

export interface SecurityManagerOptions extends LoadOptions {
  logger: Logger;
}

interface State {
  readonly config: SecurityConfig;
  readonly file: string | null;
  readonly verifier: TokenVerifier | null;
  readonly roles: Map<string, CompiledRole>;
  readonly generation: number;
}

/** The message every refused token gets: nothing an attacker could use. */
export const UNAUTHORIZED_MESSAGE = 'invalid or expired token';

/**
 * @example
 * const security = SecurityManager.fromConfig(config.security, { logger, baseDir: dirname(configFile) });
 * const server = new DistributionServer(handoff, config.server, { logger, security });
 * process.on('SIGHUP', () => security.reload(undefined, 'SIGHUP'));
 */
export class SecurityManager {
  readonly audit: AuditLog;
  /** Live connections per tenant (the distribution server takes and returns leases). */
  readonly connections = new TenantConnections();
  private state: State;
  private readonly interned = new Map<string, { set: PermissionSet; refs: number }>();
  private readonly listeners = new Set<() => void>();

  private constructor(
    state: State,
    private readonly options: SecurityManagerOptions,
  ) {
    this.state = state;
    this.audit = new AuditLog(options.logger);
    warnLegacyAdmin(state, options.logger);
  }

  /** Loads and compiles the configuration; throws ConfigError naming the bad key. */
  static fromConfig(source: SecuritySource | Record<string, unknown>, options: SecurityManagerOptions): SecurityManager {
    return new SecurityManager(compile(source, options, 1), options);
  }

  get generation(): number {
    return this.state.generation;
  }

  get config(): SecurityConfig {
    return this.state.config;
  }

  /** The bearer token of a request: `Authorization: Bearer …`, else `?access_token=`; null when neither is there. */
  tokenFrom(headers: IncomingHttpHeaders, url: string | undefined): string | null {
    const h = headers.authorization;
    if (typeof h === 'string') {
      const m = /^Bearer +(\S+) *$/i.exec(h);
      // Another scheme, or a malformed header, is a token that is not valid: refused, never anonymous.
      return m ? m[1] : '';
    }
    const q = url ? url.indexOf('?') : -1;
    if (q >= 0) {
      const token = new URLSearchParams(url!.slice(q + 1)).get('access_token');
      if (token !== null) return token;
    }
    return null;
  }

  /** Verifies a token (null: none was sent, anonymous when configured). Failures are audited. */
  async authenticate(token: string | null, ctx: AuthContext): Promise<AuthResult> {
    const result = await this.verify(token);
    if (!result.ok) this.audit.authFailed({ channel: ctx.channel, reason: result.reason, detail: result.detail, remote: ctx.remote });
    return result;
  }

  /** A fresh token for a live session: it must name the same subject and tenant. */
  async refresh(current: Principal, token: string, ctx: AuthContext): Promise<AuthResult> {
    let result = await this.verify(token);
    if (result.ok) {
      const next = result.principal;
      if (current.anonymous || next.subject !== current.subject) {
        result = { ok: false, reason: 'subject-mismatch', detail: `token for "${next.subject}" on a session of "${current.subject}"` };
      } else if (next.tenant !== current.tenant) {
        result = { ok: false, reason: 'tenant-mismatch', detail: `token for tenant "${next.tenant}" on a session of tenant "${current.tenant}"` };
      }
    }
    if (result.ok) {
      const p = result.principal;
      this.audit.refreshed({ subject: p.subject, tenant: p.tenant, roles: p.roles, session: ctx.session, remote: ctx.remote, expiresAt: p.expiresAt });
    } else {
      this.audit.authFailed({ channel: ctx.channel, reason: result.reason, detail: result.detail, remote: ctx.remote, subject: current.subject, tenant: current.tenant });
    }
    return result;
  }

  /** The principal again under the current configuration (after a reload); its expiry does not change. */
  rederive(principal: Principal): AuthResult {
    if (principal.anonymous) {
      const anon = this.state.config.anonymous;
      return anon ? { ok: true, principal: anonymousPrincipal(anon) } : { ok: false, reason: 'anonymous-disabled', detail: 'anonymous access was turned off' };
    }
    const jwt = this.state.config.jwt;
    if (!jwt) return { ok: false, reason: 'malformed', detail: 'tokens are no longer accepted (no jwt configured)' };
    return principalFromClaims(principal.claims, this.state.config, principal.expiresAt);
  }

  /** The shared PermissionSet of a principal; give it back with release() when the session ends. */
  acquire(principal: Principal): PermissionSet {
    const set = this.permissionsFor(principal);
    const entry = this.interned.get(set.key);
    if (entry) entry.refs++;
    else this.interned.set(set.key, { set, refs: 1 });
    return set;
  }

  release(set: PermissionSet): void {
    const entry = this.interned.get(set.key);
    if (!entry || entry.set !== set) return;
    if (--entry.refs === 0) this.interned.delete(set.key);
  }

  /** The PermissionSet of a principal: the interned one when a session holds it, else a new one. */
  permissionsFor(principal: Principal): PermissionSet {
    const { roles } = this.state;
    let admin = false;
    const grants = new Map<string, Grant>();
    for (const name of principal.roles) {
      const role = roles.get(name);
      if (!role) continue;
      admin ||= role.admin;
      for (const template of role.grants) {
        for (const selector of instantiate(template, principal.claims)) {
          grants.set(`${selector.text}#${template.projection.key}`, { selector, projection: template.projection });
        }
      }
    }
    const keys = [...grants.keys()].sort();
    const key = `${principal.tenant}\u0000${admin ? 'admin' : ''}\u0000${keys.join('\u0000')}`;
    const existing = this.interned.get(key);
    if (existing) return existing.set;
    return new PermissionSet(key, principal.tenant, admin, keys.map((k) => grants.get(k)!));
  }

  /**
   * What the principal may administer: `server` (reload, /metrics, every tenant's health), its
   * own `tenant`, or null. Server-wide only with a role that says `admin: server`.
   */
  adminScope(principal: Principal): AdminScope | null {
    let scope: AdminScope | null = null;
    for (const name of principal.roles) scope = widest(scope, this.state.roles.get(name)?.adminScope ?? null);
    return scope;
  }

  /** Least time between two reloads over HTTP (security.reload.minIntervalMs). */
  get reloadMinIntervalMs(): number {
    return this.state.config.reload?.minIntervalMs ?? DEFAULT_RELOAD_MIN_INTERVAL_MS;
  }

  limitsFor(tenant: string): TenantLimits {
    return tenantLimits(this.state.config, tenant);
  }

  /**
   * Applies a new configuration: `source` (settings or `{ file }`), or, without one, the file the
   * current configuration came from. Live sessions are re-evaluated by the listeners before this
   * returns. An invalid configuration throws ConfigError and changes nothing.
   */
  reload(source?: SecuritySource | Record<string, unknown>, by = 'api'): ReloadSummary {
    const from = source ?? (this.state.file ? { file: this.state.file } : undefined);
    const label = from && 'file' in from && typeof from.file === 'string' ? from.file : 'inline';
    let next: State;
    try {
      if (!from) {
        throw new ConfigError('security', 'was given inline, so there is no file to read again: pass the new settings (the CLI re-reads the main configuration on SIGHUP)');
      }
      next = compile(from, this.options, this.state.generation + 1);
    } catch (err) {
      this.audit.reloadFailed({ by, source: label, error: errorMessage(err) });
      throw err;
    }
    this.state = next;
    warnLegacyAdmin(next, this.options.logger);
    const summary = { generation: next.generation, roles: next.roles.size, source: label === 'inline' ? label : basename(label) };
    this.audit.reloaded({ by, ...summary, source: label });
    for (const l of this.listeners) l();
    return summary;
  }

  /** Called after every applied reload. Returns a function that stops the calls. */
  onReload(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async verify(token: string | null): Promise<AuthResult> {
    const { config, verifier } = this.state;
    if (token === null) {
      return config.anonymous ? { ok: true, principal: anonymousPrincipal(config.anonymous) } : { ok: false, reason: 'missing-token', detail: 'no bearer token' };
    }
    if (!verifier) return { ok: false, reason: 'malformed', detail: 'a token was sent, but no jwt is configured (anonymous access only)' };
    const v = await verifier.verify(token);
    if (!v.ok) return v;
    // The configuration may have been reloaded while the token was verified: derive under the current one.
    return principalFromClaims(v.claims, this.state.config, null);
  }
}

function compile(source: unknown, options: LoadOptions, generation: number): State {
  const { config, file } = loadSecurityConfig(source, options);
  const prefix = file ?? 'security';
  const roles = compileRoles(config.roles, prefix);
  const verifier = config.jwt ? new TokenVerifier(config.jwt, `${prefix}.jwt`) : null;
  return { config, file, verifier, roles, generation };
}

function warnLegacyAdmin(state: State, logger: Logger): void {
  const legacy = Object.entries(state.config.roles).filter(([, r]) => r.admin === true).map(([name]) => name);
  if (legacy.length === 0) return;
  logger.warn(
    { roles: legacy },
    `roles ${legacy.join(', ')}: admin: true is a tenant admin (its own tenant only); write admin: server for reload and /metrics, or admin: tenant to keep this`,
  );
}

function anonymousPrincipal(anon: { role: string; tenant: string }): Principal {
  return { subject: 'anonymous', tenant: anon.tenant, roles: [anon.role], claims: {}, expiresAt: null, anonymous: true };
}

function principalFromClaims(claims: Readonly<Record<string, unknown>>, config: SecurityConfig, expiresAt: number | null): AuthResult {
  const jwt = config.jwt!;
  const tenant = tenantFrom(claims, jwt.tenantClaim);
  if (tenant === null) return { ok: false, reason: 'missing-claim', detail: `claim "${jwt.tenantClaim}" (the tenant) is missing or not a short string` };
  const exp = claims.exp;
  const ends = expiresAt ?? (typeof exp === 'number' && Number.isFinite(exp) ? (exp + jwt.clockToleranceSec) * 1000 : null);
  return {
    ok: true,
    principal: { subject: String(claims.sub), tenant, roles: rolesFrom(claims, jwt.rolesClaim), claims, expiresAt: ends, anonymous: false },
  };
}

/**
 * The HTTP routes next to the WebSocket endpoint: health, one topic's current value, the admin
 * reload, and (optionally) static files for the dashboard. Topic paths are taken from the RAW
 * request URL: their segments are already percent-encoded (`orders/a%2Fb/1`), and decoding them
 * would turn data into structure. With security, `/topics` needs a token and answers a topic the
 * caller may not read (another tenant's, or outside its grants) exactly like a missing one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError } from '../../core/errors.ts';
import { type Principal, type ReloadSummary, type SecurityManager, UNAUTHORIZED_MESSAGE } from '../security/security-manager.ts';
import { PathError, parsePath } from '../../core/path.ts';
import type { TopicView } from '../../core/topic.ts';
import { sendError, sendJson } from './http-response.ts';
import type { StaticFiles } from './static-files.ts';

export type HealthStatus = 'ok' | 'degraded' | 'failed';

export interface HealthReport {
  status: HealthStatus;
  sources: unknown[];
  /** An edge's place in the hand-off log (records behind it); shown with the sources' detail. */
  handoff?: unknown;
}

/** An extra GET/HEAD route on an exact path (the service adds `/metrics` and `/ready`). */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpRoutesOptions {
  readonly view: TopicView;
  readonly health: () => HealthReport;
  readonly sessionCount: () => number;
  readonly staticFiles: StaticFiles | null;
  readonly logger: Logger;
  /** Null: security is off; `/topics` is open and `/admin/reload` does not exist. */
  readonly security?: { readonly manager: SecurityManager; readonly reload: (by: string) => ReloadSummary | Promise<ReloadSummary> } | null;
  /** Extra routes by exact raw path; they answer GET and HEAD (others get 405 like every route here). */
  readonly routes?: ReadonlyMap<string, HttpRoute>;
}

/** The WebSocket endpoint's path. */
export const WS_PATH = '/ws';
const TOPICS_PREFIX = '/topics/';
const RELOAD_PATH = '/admin/reload';
const TENANT_PATH = '/admin/tenant';

/** The request target's path, exactly as sent (no decoding), without the query string. */
export function rawPath(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function createHttpHandler(options: HttpRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { view, health, sessionCount, staticFiles, logger } = options;
  const security = options.security ?? null;

  function route(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const path = rawPath(req.url);
    const isStatic = staticFiles !== null && (path === '/' || path.startsWith('/assets/'));
    const isReload = security !== null && path === RELOAD_PATH;
    const isTenant = security !== null && path === TENANT_PATH;
    const extra = options.routes?.get(path);
    const known = path === '/health' || path.startsWith(TOPICS_PREFIX) || path === WS_PATH || isStatic || isReload || isTenant || extra !== undefined;
    if (!known) {
      sendError(res, 404, 'NOT_FOUND', `no route for ${truncatePath(path)}: use /ws (WebSocket), /health or /topics/<path>`);
      return;
    }
    if (isReload) {
      if (req.method !== 'POST') {
        sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not supported here: use POST`, { allow: 'POST' });
        return;
      }
      return reload(security, req, res);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not supported here: use GET`, { allow: 'GET, HEAD' });
      return;
    }
    if (extra) return extra(req, res);
    if (path === '/health') return healthCheck(req, res);
    if (isTenant) return tenantAdmin(security, req, res);
    if (path === WS_PATH) {
      sendError(res, 426, 'UPGRADE_REQUIRED', `connect to ${WS_PATH} with a WebSocket client`, { upgrade: 'websocket' });
      return;
    }
    if (isStatic) return staticFiles.serve(req, res, path);
    if (security) return securedTopic(security.manager, req, res, path.slice(TOPICS_PREFIX.length));
    topic(res, path.slice(TOPICS_PREFIX.length), null);
  }

  /**
   * With security, strangers learn only ok/degraded/failed: the sources' detail (row counts,
   * transactions, LSNs, commit times) and the totals span every tenant, so they go to a
   * server-wide admin only (issue #13). Without security there is no tenant to shield.
   */
  async function healthCheck(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const h = health();
    const status = h.status === 'failed' ? 503 : 200;
    const detail = () => ({ status: h.status, epoch: view.epoch, topics: view.size, sessions: sessionCount(), sources: h.sources, ...(h.handoff === undefined ? {} : { handoff: h.handoff }) });
    if (!security) {
      sendJson(res, status, detail());
      return;
    }
    const caller = await optionalCaller(security.manager, req, res);
    if (caller === undefined) return;
    sendJson(res, status, caller !== null && security.manager.adminScope(caller) === 'server' ? detail() : { status: h.status });
  }

  /** A tenant admin's view of its own tenant: live connections and limits. A server admin may name another with ?tenant=. */
  async function tenantAdmin(sec: NonNullable<HttpRoutesOptions['security']>, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const principal = await authenticated(sec.manager, req, res);
    if (!principal) return;
    const scope = sec.manager.adminScope(principal);
    if (scope === null) {
      sec.manager.audit.adminDenied({ subject: principal.subject, tenant: principal.tenant, roles: principal.roles, action: 'tenant' });
      sendError(res, 403, 'FORBIDDEN', 'this needs a role with admin: tenant (or admin: server)');
      return;
    }
    const asked = new URLSearchParams(req.url?.split('?')[1] ?? '').get('tenant');
    if (asked !== null && asked !== principal.tenant && scope !== 'server') {
      sec.manager.audit.adminDenied({ subject: principal.subject, tenant: principal.tenant, roles: principal.roles, action: 'tenant' });
      sendError(res, 403, 'FORBIDDEN', 'a tenant admin sees its own tenant only: leave out ?tenant=');
      return;
    }
    const tenant = asked ?? principal.tenant;
    sendJson(res, 200, { tenant, connections: sec.manager.connections.count(tenant), limits: sec.manager.limitsFor(tenant) });
  }

  async function authenticated(manager: SecurityManager, req: IncomingMessage, res: ServerResponse): Promise<Principal | null> {
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const result = await manager.authenticate(manager.tokenFrom(req.headers, req.url), { channel: 'http', remote });
    if (result.ok) return result.principal;
    sendError(res, 401, 'UNAUTHORIZED', UNAUTHORIZED_MESSAGE, { 'www-authenticate': 'Bearer realm="tidewire"' });
    return null;
  }

  async function securedTopic(manager: SecurityManager, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const principal = await authenticated(manager, req, res);
    if (principal) topic(res, path, { manager, principal });
  }

  function topic(res: ServerResponse, path: string, caller: { manager: SecurityManager; principal: Principal } | null): void {
    try {
      parsePath(path);
    } catch (err) {
      if (!(err instanceof PathError)) throw err;
      sendError(res, 400, 'INVALID_PATH', err.message);
      return;
    }
    const t = view.get(path);
    // Not readable answers exactly like not there: the same status, code and message, and the
    // same work before the answer. The permission check runs on the path whether a topic is there
    // or not, and the audit record of a denial is written after the answer (AuditLog defers it),
    // so the time to answer tells nothing either (issue #13: it was 10-20% slower for a topic of
    // another tenant).
    const projection = caller ? caller.manager.permissionsFor(caller.principal).access(path.split('/')) : null;
    const ours = t !== undefined && (caller === null || t.tenant === caller.principal.tenant);
    if (!t || !ours || (caller && projection === null)) {
      sendError(res, 404, 'NOT_FOUND', `no topic at "${truncatePath(path)}": check the path (segments are percent-encoded, e.g. a%2Fb)`);
      if (t && caller) {
        const p = caller.principal;
        caller.manager.audit.topicDenied({ subject: p.subject, tenant: p.tenant, roles: p.roles, path, why: ours ? 'no read grant' : 'another tenant' });
      }
      return;
    }
    const value = projection ? projection.value(t.value) : t.value;
    sendJson(res, 200, { path: t.path, version: t.version, epoch: view.epoch, value });
  }

  async function reload(sec: NonNullable<HttpRoutesOptions['security']>, req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume(); // the body is not used: the new configuration comes from where the service reads it
    const principal = await authenticated(sec.manager, req, res);
    if (!principal) return;
    if (sec.manager.adminScope(principal) !== 'server') {
      sec.manager.audit.adminDenied({ subject: principal.subject, tenant: principal.tenant, roles: principal.roles, action: 'reload' });
      sendError(res, 403, 'FORBIDDEN', 'reloading acts on the whole server: it needs a role with admin: server (admin: tenant and admin: true act on their own tenant only)');
      return;
    }
    const wait = lastReload + sec.manager.reloadMinIntervalMs - Date.now();
    if (wait > 0) {
      const retry = Math.ceil(wait / 1000);
      sendError(res, 429, 'RATE_LIMITED', `a reload ran less than security.reload.minIntervalMs (${sec.manager.reloadMinIntervalMs} ms) ago: retry in ${retry} s`, { 'retry-after': String(retry) });
      return;
    }
    lastReload = Date.now();
    try {
      const summary = await sec.reload(`${principal.subject} (tenant ${principal.tenant}) via POST ${RELOAD_PATH}`);
      sendJson(res, 200, { reloaded: true, ...summary });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // Admins see why; the previous configuration stays in force.
      sendError(res, 422, 'CONFIG_INVALID', `${withoutDirectories(err.message)}; the previous configuration stays in force`);
    }
  }

  let lastReload = -Infinity;

  function fail(res: ServerResponse, err: unknown): void {
    logger.error({ err }, 'http request failed');
    if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'the request failed on the server; see the server log');
    else res.destroy();
  }

  return (req, res) => {
    try {
      const done = route(req, res);
      if (done) done.catch((err: unknown) => fail(res, err));
    } catch (err) {
      fail(res, err);
    }
  };
}

/**
 * The caller of an endpoint that is open but tells a server admin more: null without a token (no
 * authentication is attempted, nothing is audited), the principal with a valid one; undefined
 * when an invalid token was answered 401.
 */
export async function optionalCaller(manager: SecurityManager, req: IncomingMessage, res: ServerResponse): Promise<Principal | null | undefined> {
  const token = manager.tokenFrom(req.headers, req.url);
  if (token === null) return null;
  const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
  const result = await manager.authenticate(token, { channel: 'http', remote });
  if (result.ok) return result.principal;
  sendError(res, 401, 'UNAUTHORIZED', UNAUTHORIZED_MESSAGE, { 'www-authenticate': 'Bearer realm="tidewire"' });
  return undefined;
}

/** A message without the directories of the absolute paths in it (`/etc/tidewire/security.yaml` → `security.yaml`). */
export function withoutDirectories(message: string): string {
  return message.replace(/(?<![\w.:/])\/(?:[^\s/'"]+\/)+/g, '');
}

function truncatePath(p: string): string {
  return p.length > 128 ? `${p.slice(0, 128)}…` : p;
}

/**
 * `GET /metrics` (Prometheus text format) and `GET /ready`, served on the distribution server's
 * port through its `routes` option. With security on, /metrics needs a token of a role with
 * `admin: server` (its totals span every tenant), and /ready names each source's state only: its
 * detail (positions, tables, errors) goes to a server-wide admin, like /health's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { type HttpRoute, optionalCaller } from '../distribution/index.ts';
import type { SecurityManager } from '../security/index.ts';
import type { Readiness } from './readiness.ts';

export const METRICS_PATH = '/metrics';
export const READY_PATH = '/ready';

export interface OpsRoutesOptions {
  /** Null: metrics are off (metrics.enabled: false) and /metrics is not served. */
  readonly registry: Registry | null;
  readonly readiness: () => Readiness;
  readonly security?: SecurityManager | null;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export function opsRoutes(options: OpsRoutesOptions): Map<string, HttpRoute> {
  const routes = new Map<string, HttpRoute>();
  const security = options.security ?? null;
  routes.set(READY_PATH, async (req, res) => {
    const r = options.readiness();
    let detail = security === null;
    if (security) {
      const caller = await optionalCaller(security, req, res);
      if (caller === undefined) return;
      detail = caller !== null && security.adminScope(caller) === 'server';
    }
    send(res, r.ready ? 200 : 503, JSON_TYPE, JSON.stringify({ ready: r.ready, reasons: detail ? r.reasons : r.brief }));
  });
  const { registry } = options;
  if (registry) {
    routes.set(METRICS_PATH, async (req, res) => {
      if (security && !(await isServerAdmin(security, req, res))) return;
      send(res, 200, registry.contentType, await registry.metrics());
    });
  }
  return routes;
}

async function isServerAdmin(security: SecurityManager, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
  const auth = await security.authenticate(security.tokenFrom(req.headers, req.url), { channel: 'http', remote });
  if (!auth.ok) {
    send(res, 401, JSON_TYPE, JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'metrics need a bearer token of a role with admin: server' } }), {
      'www-authenticate': 'Bearer realm="tidewire"',
    });
    return false;
  }
  if (security.adminScope(auth.principal) !== 'server') {
    const p = auth.principal;
    security.audit.adminDenied({ subject: p.subject, tenant: p.tenant, roles: p.roles, action: 'metrics' });
    send(res, 403, JSON_TYPE, JSON.stringify({ error: { code: 'FORBIDDEN', message: 'metrics span every tenant: they need a role with admin: server (admin: tenant and admin: true act on their own tenant only)' } }));
    return false;
  }
  return true;
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

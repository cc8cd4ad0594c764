/**
 * `GET /metrics` (Prometheus text format) and `GET /ready`, served on the distribution server's
 * port through its `routes` option. With security on, /metrics needs a token of a role with
 * `admin: true` (totals span every tenant); /ready says only whether state is complete and why not.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { HttpRoute } from '../distribution/index.ts';
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

export function opsRoutes(options: OpsRoutesOptions): Map<string, HttpRoute> {
  const routes = new Map<string, HttpRoute>();
  routes.set(READY_PATH, (_req, res) => {
    const r = options.readiness();
    send(res, r.ready ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(r));
  });
  const { registry } = options;
  if (registry) {
    const security = options.security ?? null;
    routes.set(METRICS_PATH, async (req, res) => {
      if (security && !(await isAdmin(security, req, res))) return;
      send(res, 200, registry.contentType, await registry.metrics());
    });
  }
  return routes;
}

async function isAdmin(security: SecurityManager, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
  const auth = await security.authenticate(security.tokenFrom(req.headers, req.url), { channel: 'http', remote });
  if (!auth.ok) {
    send(res, 401, 'application/json; charset=utf-8', JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'metrics need a bearer token of a role with admin: true' } }), {
      'www-authenticate': 'Bearer realm="tidewire"',
    });
    return false;
  }
  if (!security.permissionsFor(auth.principal).admin) {
    send(res, 403, 'application/json; charset=utf-8', JSON.stringify({ error: { code: 'FORBIDDEN', message: 'metrics need a role with admin: true' } }));
    return false;
  }
  return true;
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * The HTTP routes next to the WebSocket endpoint: health, one topic's current value, and
 * (optionally) static files for the dashboard. Topic paths are taken from the RAW request URL:
 * their segments are already percent-encoded (`orders/a%2Fb/1`), and decoding them would turn
 * data into structure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { PathError, parsePath } from '../topics/path.ts';
import type { TopicView } from '../topics/topic-store.ts';
import type { StaticFiles } from './static-files.ts';

export type HealthStatus = 'ok' | 'degraded' | 'failed';

export interface HealthReport {
  status: HealthStatus;
  sources: unknown[];
}

export interface HttpRoutesOptions {
  readonly view: TopicView;
  readonly health: () => HealthReport;
  readonly sessionCount: () => number;
  readonly staticFiles: StaticFiles | null;
  readonly logger: Logger;
}

/** The WebSocket endpoint's path. */
export const WS_PATH = '/ws';
const TOPICS_PREFIX = '/topics/';

/** The request target's path, exactly as sent (no decoding), without the query string. */
export function rawPath(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

export function createHttpHandler(options: HttpRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { view, health, sessionCount, staticFiles, logger } = options;

  function route(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const path = rawPath(req.url);
    const isStatic = staticFiles !== null && (path === '/' || path.startsWith('/assets/'));
    const known = path === '/health' || path.startsWith(TOPICS_PREFIX) || path === WS_PATH || isStatic;
    if (!known) {
      sendError(res, 404, 'NOT_FOUND', `no route for ${truncatePath(path)}: use /ws (WebSocket), /health or /topics/<path>`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not supported here: use GET`, { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/health') {
      const h = health();
      const body = { status: h.status, epoch: view.epoch, topics: view.size, sessions: sessionCount(), sources: h.sources };
      sendJson(res, h.status === 'failed' ? 503 : 200, body);
      return;
    }
    if (path === WS_PATH) {
      sendError(res, 426, 'UPGRADE_REQUIRED', `connect to ${WS_PATH} with a WebSocket client`, { upgrade: 'websocket' });
      return;
    }
    if (isStatic) return staticFiles.serve(req, res, path);
    topic(res, path.slice(TOPICS_PREFIX.length));
  }

  function topic(res: ServerResponse, path: string): void {
    try {
      parsePath(path);
    } catch (err) {
      if (!(err instanceof PathError)) throw err;
      sendError(res, 400, 'INVALID_PATH', err.message);
      return;
    }
    const t = view.get(path);
    if (!t) {
      sendError(res, 404, 'NOT_FOUND', `no topic at "${truncatePath(path)}": check the path (segments are percent-encoded, e.g. a%2Fb)`);
      return;
    }
    sendJson(res, 200, { path: t.path, version: t.version, epoch: view.epoch, value: t.value });
  }

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

function truncatePath(p: string): string {
  return p.length > 128 ? `${p.slice(0, 128)}…` : p;
}

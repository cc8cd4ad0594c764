/**
 * Serves a folder's `index.html` at `/` and its `assets/` under `/assets/*` (the dashboard).
 * Each URL segment is decoded on its own and refused if it could navigate (`.`, `..`, a slash or
 * backslash, NUL), and the real path of the file must lie inside the folder, so neither
 * traversal nor a symlink can reach outside it.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';
import { sendError } from './http-response.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/**
 * Sent with every file: the dashboard loads only its own scripts and styles, talks only to its own
 * origin (`connect-src 'self'` covers ws:/wss: to the same host and port in CSP Level 3 browsers),
 * cannot be framed (clickjacking), and sends no referrer (its URL may carry `?token=`).
 */
export const STATIC_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
});

export function contentType(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** Decodes a URL path below the served folder into its segments; null when it is not a safe file name. */
export function safeSegments(urlPath: string): string[] | null {
  const parts = urlPath.split('/').filter((p, i) => i > 0 || p !== '');
  const out: string[] = [];
  for (const p of parts) {
    let s: string;
    try {
      s = decodeURIComponent(p);
    } catch {
      return null;
    }
    if (s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s)) return null;
    out.push(s);
  }
  return out.length > 0 ? out : null;
}

export class StaticFiles {
  private rootReal: Promise<string>;

  constructor(readonly root: string) {
    this.rootReal = realpath(root);
    // Surfaces as 404s per request; a missing folder must not be an unhandled rejection.
    this.rootReal.catch(() => undefined);
  }

  async serve(req: IncomingMessage, res: ServerResponse, urlPath: string): Promise<void> {
    const segments = urlPath === '/' ? ['index.html'] : safeSegments(urlPath);
    if (!segments || (segments[0] !== 'index.html' && segments[0] !== 'assets')) {
      sendError(res, 400, 'INVALID_PATH', 'the file path is not valid');
      return;
    }
    let file: string;
    let size: number;
    let mtime: Date;
    try {
      const root = await this.rootReal;
      file = await realpath(join(root, ...segments));
      if (!file.startsWith(root + sep)) throw Object.assign(new Error('outside the served folder'), { code: 'ENOENT' });
      const st = await stat(file);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      size = st.size;
      mtime = st.mtime;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') {
        sendError(res, 404, 'NOT_FOUND', `no file at ${urlPath}`);
        return;
      }
      throw err;
    }
    res.writeHead(200, {
      'content-type': contentType(file),
      'content-length': size,
      'last-modified': mtime.toUTCString(),
      'cache-control': 'no-cache',
      ...STATIC_HEADERS,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }
}

/**
 * `tidewire watch <selector>`: prints what a subscriber receives, one line per message, so the
 * deltas are visible as they are on the wire (with the size a full value would have cost).
 *
 * A token (`--token`, or TIDEWIRE_TOKEN) goes in the handshake's Authorization header and is never
 * printed; an `access_token` in the URL is shown as `***`. A handshake the server refuses for
 * good (401: no token or a bad one) ends the command with what to do (exit 1) instead of retrying
 * forever; a server that is down or restarting is retried with backoff.
 *
 * The backoff (core/backoff.ts: full jitter under a step of 250 ms doubling to 10 s) starts over
 * only once a subscription was answered (`subscribed`) or the connection held for STABLE_MS: a
 * server that accepts and then closes at once (4008, a proxy, a crash loop) is retried less and
 * less often, not every 250 ms forever. Each "reconnecting" line says the close code and reason.
 */
import WebSocket from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import { Backoff, type BackoffOptions } from '../../core/backoff.ts';
import type { JsonValue } from '../../core/json.ts';

type Msg = { type: string; path?: string; version?: number; value?: JsonValue; patch?: unknown[]; code?: string; message?: string; topics?: number; epoch?: string; sent?: number; total?: number };

export interface WatchOptions {
  /** The server's WebSocket endpoint, e.g. ws://127.0.0.1:8080/ws. */
  readonly url: string;
  /** A JWT, for a server with security on. */
  readonly token?: string;
  /** Reconnect delays; default 250 ms doubling to 10 s, as the SDK's. */
  readonly reconnect?: BackoffOptions;
}

/** Reconnect delays of `watch`: the SDK's (client/client.ts). */
export const WATCH_RECONNECT: BackoffOptions = { initialMs: 250, maxMs: 10_000 };
/** A connection up this long counts as stable even if its subscription was never answered. */
const STABLE_MS = 5000;

/** How a close is shown: `4008 send queue full`, `1006`. */
export function closeText(code: number, reason: string): string {
  const why = reason.trim();
  return why ? `${code} ${why}` : String(code);
}

/** `url` as it may be printed: the value of an `access_token` parameter replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/gi, '$1***');
}

/** What to tell the user about a refused handshake, or null when trying again may work (429, 5xx). */
export function refusal(status: number, body: string, hasToken: boolean): string | null {
  let detail = '';
  try {
    const e = (JSON.parse(body) as { error?: { message?: string } }).error;
    if (typeof e?.message === 'string') detail = `: ${e.message}`;
  } catch {
    // not tidewire's JSON error body
  }
  if (status === 401) {
    return hasToken
      ? `the server refused the token (401${detail}); pass a valid, unexpired token for this server with --token <jwt> or TIDEWIRE_TOKEN (the server's audit log says why it was refused)`
      : 'this server needs a token: --token <jwt> (or set TIDEWIRE_TOKEN)';
  }
  if (status === 404) return "nothing answers WebSocket at this URL (404): tidewire's endpoint is /ws, e.g. --url ws://127.0.0.1:8080/ws";
  if (status === 408 || status === 429 || status >= 500) return null;
  return `the server refused the connection (${status}${detail})`;
}

export function watchCommand(selector: string, options: WatchOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const { url, token } = options;
  const shown = redactUrl(url);
  /** A message of a socket error, without the token should a library ever put it there. */
  const clean = (text: string) => (token ? text.split(token).join('***') : text);
  const values = new Map<string, { value: JsonValue; version: number }>();
  const color = 'isTTY' in out && (out as { isTTY?: boolean }).isTTY;
  const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s);
  const backoff = new Backoff({ ...(options.reconnect ?? WATCH_RECONNECT), stableMs: STABLE_MS });
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: number, message?: string) => {
      if (done) return;
      done = true;
      if (message) err.write(`tidewire watch: ${message}\n`);
      resolve(code);
    };
    const retry = (why: string) => {
      if (done) return;
      const delay = backoff.next();
      out.write(dim(`${why}; reconnecting in ${delay} ms (attempt ${backoff.attempts})\n`));
      setTimeout(connect, delay);
    };
    const connect = () => {
      const ws = new WebSocket(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
      let refused: number | null = null;
      // A handshake answered with something other than 101: the status says whether to go on.
      // Either way the attempt is ended (terminate), and 'close' retries unless it was final.
      ws.on('unexpected-response', (_req, res) => {
        refused = res.statusCode ?? 0;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        const end = () => {
          const fatal = refusal(refused!, body, token !== undefined);
          if (fatal !== null) finish(1, fatal);
          ws.terminate();
        };
        res.on('end', end);
        res.on('error', end);
      });
      ws.on('open', () => {
        // Not a reset: a server that accepts and then closes would be retried at the first step forever.
        backoff.connected();
        ws.send(JSON.stringify({ type: 'subscribe', id: 'watch', selector }));
      });
      ws.on('message', (data) => {
        for (const m of JSON.parse(String(data)) as Msg[]) {
          const frameBytes = Buffer.byteLength(JSON.stringify(m));
          switch (m.type) {
            case 'hello':
              out.write(dim(`connected to ${shown} (epoch ${m.epoch})\n`));
              break;
            case 'value':
              values.set(m.path!, { value: m.value!, version: m.version! });
              out.write(`value    ${m.path} v${m.version} ${JSON.stringify(m.value)}\n`);
              break;
            case 'delta': {
              const prev = values.get(m.path!);
              if (prev === undefined || prev.version !== m.version! - 1) {
                // A delta applies only to the version before it: resubscribe rather than show a wrong value.
                out.write(dim(`gap at ${m.path} v${m.version}; resubscribing\n`));
                ws.send(JSON.stringify({ type: 'unsubscribe', id: 'watch' }));
                ws.send(JSON.stringify({ type: 'subscribe', id: 'watch', selector }));
              } else {
                const next = applyPatch(prev.value, m.patch as never);
                values.set(m.path!, { value: next, version: m.version! });
                const full = Buffer.byteLength(JSON.stringify({ type: 'value', path: m.path, version: m.version, value: next }));
                out.write(`delta    ${m.path} v${m.version} ${JSON.stringify(m.patch)} ${dim(`(${frameBytes} B, full value ${full} B)`)}\n`);
              }
              break;
            }
            case 'removal':
              values.delete(m.path!);
              out.write(`removal  ${m.path} v${m.version}\n`);
              break;
            case 'loading':
              // A large subscription arrives in pages (docs/PROTOCOL.md, "Large subscriptions").
              out.write(dim(`loading ${m.sent!.toLocaleString('en-US')} of ${m.total!.toLocaleString('en-US')}\n`));
              break;
            case 'subscribed':
              // Answered: this server serves us, so the next drop starts over from the first step.
              backoff.reset();
              out.write(dim(`live: ${m.topics} topics match ${selector}\n`));
              break;
            case 'error':
              out.write(`error    ${m.code}: ${m.message}\n`);
              if (m.code === 'INVALID_SELECTOR') {
                done = true;
                ws.close();
                resolve(2);
              }
              break;
          }
        }
      });
      ws.on('error', (e) => {
        // A refused handshake is reported by its status; ending it makes ws emit an error too.
        if (!done && refused === null) out.write(dim(`connection error: ${clean(e.message)}\n`));
      });
      ws.on('close', (code, reasonBuffer) => {
        if (code === 1000 || done) return;
        // The token expired, or a security reload took the access away: the same token cannot help.
        if (code === 4001) return finish(1, 'the server closed the session (4001): the token expired; pass a fresh one with --token <jwt> or TIDEWIRE_TOKEN');
        if (code === 4003) return finish(1, 'the server closed the session (4003): its security settings no longer give this token access');
        retry(refused === null ? `disconnected (${closeText(code, clean(reasonBuffer.toString()))})` : `refused (${refused})`);
      });
    };
    connect();
  });
}

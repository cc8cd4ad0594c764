/**
 * `tidewire watch <selector>`: prints what a subscriber receives, one line per message, so the
 * deltas are visible as they are on the wire (with the size a full value would have cost).
 */
import WebSocket from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import type { JsonValue } from '../../core/json.ts';

type Msg = { type: string; path?: string; version?: number; value?: JsonValue; patch?: unknown[]; code?: string; message?: string; topics?: number; epoch?: string };

export function watchCommand(selector: string, url: string, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const values = new Map<string, { value: JsonValue; version: number }>();
  const color = 'isTTY' in out && (out as { isTTY?: boolean }).isTTY;
  const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s);
  let backoff = 250;
  return new Promise((resolve) => {
    const connect = () => {
      const ws = new WebSocket(url);
      ws.on('open', () => {
        backoff = 250;
        ws.send(JSON.stringify({ type: 'subscribe', id: 'watch', selector }));
      });
      ws.on('message', (data) => {
        for (const m of JSON.parse(String(data)) as Msg[]) {
          const frameBytes = Buffer.byteLength(JSON.stringify(m));
          switch (m.type) {
            case 'hello':
              out.write(dim(`connected to ${url} (epoch ${m.epoch})\n`));
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
            case 'subscribed':
              out.write(dim(`live: ${m.topics} topics match ${selector}\n`));
              break;
            case 'error':
              out.write(`error    ${m.code}: ${m.message}\n`);
              if (m.code === 'INVALID_SELECTOR') {
                ws.close();
                resolve(2);
              }
              break;
          }
        }
      });
      ws.on('error', (err) => out.write(dim(`connection error: ${err.message}\n`)));
      ws.on('close', (code) => {
        if (code === 1000) return;
        out.write(dim(`disconnected (${code}); reconnecting in ${backoff} ms\n`));
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 10_000);
      });
    };
    connect();
  });
}

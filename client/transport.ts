/**
 * The WebSocket the client runs on: the one passed in, the platform's (browsers, Deno, Node ≥ 22),
 * or the `ws` package loaded on demand in Node 20, which has no global WebSocket. Only the
 * standard `on*` handler properties are used, which both browsers and `ws` provide.
 */

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** WebSocket.OPEN in every implementation. */
export const OPEN = 1;

export async function resolveWebSocket(given: WebSocketConstructor | undefined): Promise<WebSocketConstructor> {
  if (given) return given;
  const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (native) return native;
  // A variable specifier keeps bundlers from pulling `ws` into browser builds.
  const name = 'ws';
  const mod = (await import(/* @vite-ignore */ name)) as { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
  const ctor = mod.WebSocket ?? mod.default;
  if (!ctor) throw new Error("no WebSocket implementation: pass options.WebSocket, or install the 'ws' package in Node");
  return ctor;
}

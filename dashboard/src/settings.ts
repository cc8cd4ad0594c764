/**
 * What the page is asked to show, read from its URL: `?selector=` (default `orders/**`) and
 * `?token=`. The token travels to the server as `access_token` in the WebSocket URL, because a
 * browser cannot set an Authorization header on a WebSocket handshake. It is moved out of the
 * address bar into sessionStorage, so it is not left in history, bookmarks or screenshots, yet
 * survives a reload of the tab.
 */

export const DEFAULT_SELECTOR = 'orders/**';
const TOKEN_KEY = 'tidewire.token';

export interface Settings {
  selector: string;
  /** ws(s)://<this host>/ws, with `access_token` when a token was given. */
  wsUrl: string;
}

export function readSettings(location: Location, storage: Storage | null, history: History): Settings {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  let token = fromUrl ?? safeGet(storage, TOKEN_KEY);
  if (fromUrl !== null) {
    safeSet(storage, TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url);
  }
  if (token === '') token = null;
  const selector = url.searchParams.get('selector')?.trim() || DEFAULT_SELECTOR;
  return { selector, wsUrl: webSocketUrl(location, token) };
}

export function webSocketUrl(location: Pick<Location, 'protocol' | 'host'>, token: string | null): string {
  const ws = new URL(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`);
  if (token) ws.searchParams.set('access_token', token);
  return ws.toString();
}

/** Keeps `?selector=` in the address bar in step with what is shown, so the view can be shared. */
export function rememberSelector(location: Location, history: History, selector: string): void {
  const url = new URL(location.href);
  if (selector === DEFAULT_SELECTOR) url.searchParams.delete('selector');
  else url.searchParams.set('selector', selector);
  history.replaceState(history.state, '', url);
}

// Storage throws in some privacy modes; the page still works, the token just does not survive a reload.
function safeGet(storage: Storage | null, key: string): string | null {
  try {
    return storage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function safeSet(storage: Storage | null, key: string, value: string): void {
  try {
    storage?.setItem(key, value);
  } catch {
    // see safeGet
  }
}

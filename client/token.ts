/**
 * Bearer tokens for the client: sent as `?access_token=` on the WebSocket URL (browsers cannot set
 * headers on a WebSocket), refreshed on the live connection with an `auth` message at about 80 %
 * of the token's lifetime, and fetched afresh before reconnecting after the server closed the
 * session because its token expired (4001). docs/SECURITY.md describes the server side.
 */

/** Why the client asks for a token. */
export type TokenReason = 'connect' | 'refresh' | 'expired';

/**
 * A token, or a function returning one (e.g. from your identity provider). The function is called
 * for every connection attempt and every refresh; with `reason: 'expired'` the previous token was
 * refused as expired, so do not return it from a cache.
 */
export type TokenSource = string | ((context: { reason: TokenReason }) => string | Promise<string>);

/** Share of a token's lifetime after which it is refreshed. */
export const REFRESH_AT = 0.8;
/** Never refresh more often than this (a token with a very short or no lifetime). */
const MIN_REFRESH_MS = 1000;

export async function resolveToken(source: TokenSource, reason: TokenReason): Promise<string> {
  const token = typeof source === 'string' ? source : await source({ reason });
  if (typeof token !== 'string' || token.length === 0) throw new TypeError('the token function must return a non-empty string');
  return token;
}

/** The URL with `access_token` set (replacing one already there). */
export function withAccessToken(url: string, token: string): string {
  const u = new URL(url);
  u.searchParams.set('access_token', token);
  return u.toString();
}

/** `exp` and `iat` (seconds) from a JWT's payload, without verifying it (the server does). */
export function tokenTimes(token: string): { exp: number | null; iat: number | null } {
  try {
    const payload = token.split('.')[1];
    if (!payload) return { exp: null, iat: null };
    const json = JSON.parse(decodeBase64Url(payload)) as { exp?: unknown; iat?: unknown };
    return {
      exp: typeof json.exp === 'number' ? json.exp : null,
      iat: typeof json.iat === 'number' ? json.iat : null,
    };
  } catch {
    return { exp: null, iat: null };
  }
}

/**
 * Milliseconds from `now` until the token should be refreshed: at 80 % of its lifetime (from
 * `iat`, or from now when it has none); null when it does not expire.
 */
export function refreshDelay(token: string, now: number, exp: number | null = tokenTimes(token).exp): number | null {
  if (exp === null) return null;
  const { iat } = tokenTimes(token);
  const start = iat !== null && iat * 1000 <= now ? iat * 1000 : now;
  const at = start + (exp * 1000 - start) * REFRESH_AT;
  return Math.max(MIN_REFRESH_MS, Math.round(at - now));
}

function decodeBase64Url(s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

/**
 * Which web pages may open /ws, from the handshake's `Origin` header (browsers always send it
 * on a WebSocket handshake, and a page cannot change it; other clients usually send none).
 * Without this, with security off, any page the user visits could read every topic of a server
 * on their machine (issue #13). Exact origins only, never patterns.
 *
 * - no Origin: allowed (not a browser page; such a client could send any header anyway);
 * - the page this server served itself (Origin equals scheme://Host, the Host being an IP address
 *   or a loopback name): allowed. A DNS name is not taken on its own word, because under DNS
 *   rebinding an attacker's name points at this server and Origin and Host then agree;
 * - `server.allowedOrigins` set: exactly those;
 * - unset, security on: every origin (bearer tokens authenticate, cookies never do);
 * - unset, security off: loopback origins only (localhost, *.localhost, 127.0.0.0/8, [::1]).
 */
import { isIP } from 'node:net';
import { ConfigError } from '../../core/errors.ts';

export class OriginPolicy {
  private readonly allowed: ReadonlySet<string> | null;

  constructor(
    allowedOrigins: readonly string[] | undefined,
    private readonly securityOn: boolean,
  ) {
    this.allowed = allowedOrigins ? new Set(allowedOrigins.map((o, i) => configuredOrigin(o, i))) : null;
  }

  /** Whether a handshake with this Origin (and Host) header may open a session. */
  allows(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    const o = serialized(origin);
    if (o === null) return false;
    if (host !== undefined && o.host === host.toLowerCase() && nameCannotRebind(o.hostname)) return true;
    if (this.allowed) return this.allowed.has(o.origin);
    return this.securityOn || isLoopbackName(o.hostname);
  }
}

/** True for localhost names and loopback addresses (`[::1]` with brackets, as URL gives it). */
export function isLoopbackName(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '[::1]' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

function nameCannotRebind(hostname: string): boolean {
  return isLoopbackName(hostname) || isIP(hostname.replace(/^\[|\]$/g, '')) !== 0;
}

function serialized(origin: string): { origin: string; host: string; hostname: string } | null {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return null; // `null` (sandboxed frames, file: pages) and garbage
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return { origin: `${u.protocol}//${u.host}`, host: u.host, hostname: u.hostname };
}

function configuredOrigin(origin: string, i: number): string {
  let u: URL | null = null;
  try {
    u = new URL(origin);
  } catch {
    // reported below
  }
  const exact = u !== null && (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username && !origin.includes('*');
  if (!exact) {
    throw new ConfigError(`server.allowedOrigins.${i}`, 'must be an exact origin: scheme and host, with the port when it is not the default (https://app.example.com, http://localhost:3000); no path, no wildcard');
  }
  return `${u!.protocol}//${u!.host}`;
}

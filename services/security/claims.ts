/**
 * Reading the claims tidewire uses from a verified token: roles, tenant, and the claims a grant
 * pattern names. A claim name is first taken literally (namespaced claims such as
 * `https://example.com/roles` contain dots), then as a dotted path into nested objects
 * (`realm_access.roles`).
 */

/** Longest tenant accepted from a token; tenants key every index, so they stay short. */
export const MAX_TENANT_LENGTH = 128;
/** Most role names read from one token. */
export const MAX_ROLES = 64;

export function readClaim(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let v: unknown = claims;
  for (const key of name.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Role names: an array of strings, or one string of space-separated names. Anything else: none. */
export function rolesFrom(claims: Readonly<Record<string, unknown>>, name: string): string[] {
  const v = readClaim(claims, name);
  let roles: string[];
  if (typeof v === 'string') roles = v.split(/[\s,]+/).filter(Boolean);
  else if (Array.isArray(v)) roles = v.filter((r): r is string => typeof r === 'string' && r.length > 0);
  else return [];
  return [...new Set(roles)].slice(0, MAX_ROLES).sort();
}

/** The tenant: a non-empty string (or a number, as text) of at most MAX_TENANT_LENGTH characters; null otherwise. */
export function tenantFrom(claims: Readonly<Record<string, unknown>>, name: string): string | null {
  const v = readClaim(claims, name);
  const t = typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : null;
  return t !== null && t.length > 0 && t.length <= MAX_TENANT_LENGTH ? t : null;
}

/**
 * Roles compiled once per configuration: each role's own grants plus those of every role it
 * includes, transitively. An include cycle, or an include of a role that does not exist, is a
 * configuration error naming the whole chain.
 */
import { ConfigError } from '../../core/errors.ts';
import { type GrantTemplate, compileGrant } from './grant-pattern.ts';
import type { AdminScope, RoleSpec } from './security-config.ts';

export interface CompiledRole {
  readonly name: string;
  /** Any admin scope (tenant or server). */
  readonly admin: boolean;
  /** The widest admin scope of the role and the roles it includes; null: not an admin. */
  readonly adminScope: AdminScope | null;
  /** Own and included grants, without duplicates. */
  readonly grants: readonly GrantTemplate[];
}

export function compileRoles(roles: Readonly<Record<string, RoleSpec>>, prefix = 'security'): Map<string, CompiledRole> {
  const own = new Map<string, GrantTemplate[]>();
  for (const [name, spec] of Object.entries(roles)) {
    own.set(name, (spec.read ?? []).map((g, i) => compileGrant(g, `${prefix}.roles.${name}.read.${i}`)));
  }
  const done = new Map<string, CompiledRole>();
  const visiting: string[] = [];

  const resolve = (name: string): CompiledRole => {
    const cached = done.get(name);
    if (cached) return cached;
    const at = visiting.indexOf(name);
    if (at >= 0) {
      const cycle = [...visiting.slice(at), name].join(' → ');
      throw new ConfigError(`${prefix}.roles.${name}.include`, `roles include each other in a cycle (${cycle}): remove one of these includes`);
    }
    visiting.push(name);
    const spec = roles[name];
    const grants = new Map<string, GrantTemplate>();
    for (const g of own.get(name)!) grants.set(`${g.text}#${g.projection.key}`, g);
    let adminScope = scopeOf(spec.admin);
    for (const inc of spec.include ?? []) {
      if (!Object.hasOwn(roles, inc)) {
        throw new ConfigError(`${prefix}.roles.${name}.include`, `names the role "${inc}", which is not defined under roles`);
      }
      const r = resolve(inc);
      adminScope = widest(adminScope, r.adminScope);
      for (const g of r.grants) grants.set(`${g.text}#${g.projection.key}`, g);
    }
    visiting.pop();
    const role: CompiledRole = { name, admin: adminScope !== null, adminScope, grants: [...grants.values()] };
    done.set(name, role);
    return role;
  };

  for (const name of Object.keys(roles)) resolve(name);
  return done;
}

/** `true` is the older spelling of `tenant`: a tenant's admin must never act on the whole server (issue #13). */
function scopeOf(admin: RoleSpec['admin']): AdminScope | null {
  if (admin === 'server') return 'server';
  return admin === 'tenant' || admin === true ? 'tenant' : null;
}

export function widest(a: AdminScope | null, b: AdminScope | null): AdminScope | null {
  return a === 'server' || b === 'server' ? 'server' : (a ?? b);
}

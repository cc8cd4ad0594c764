/**
 * `tidewire check` for security and tenants: the security settings load, and every tenant a token
 * can be in can see some topic. Every topic belongs to the tenant its mapping gives it (`tenant`,
 * or per row `tenantColumn`/`tenantField`), and to `default` when the mapping gives none; a session
 * sees only its token's tenant. So with tenants in the tokens (`acme`, as in the README's example)
 * and no tenant on the mappings, every request answers 404, with the reason only in the audit log.
 */
import { DEFAULT_TENANT } from '../../core/topic.ts';
import { errorMessage } from '../../core/errors.ts';
import { type SecurityConfig, loadSecurityConfig } from '../security/index.ts';
import type { Config } from '../config/config.ts';
import { type CheckResult, fail, ok, warn } from './check-report.ts';

/** The tenants topics can belong to: fixed ones, and the mappings that read it from the data. */
function topicTenants(config: Config): { fixed: Set<string>; fromData: string[] } {
  const fixed = new Set<string>();
  const fromData: string[] = [];
  config.postgres?.tables.forEach((t, i) => {
    if (t.tenantColumn) fromData.push(`postgres.tables.${i} (${t.table}, tenantColumn ${t.tenantColumn})`);
    else fixed.add(t.tenant ?? DEFAULT_TENANT);
  });
  config.kafka?.topics.forEach((m, i) => {
    if (m.tenantField) fromData.push(`kafka.topics.${i} (tenantField ${m.tenantField})`);
    else fixed.add(m.tenant ?? DEFAULT_TENANT);
  });
  return { fixed, fromData };
}

/** The tenants the security settings name, with where. */
function namedTenants(security: SecurityConfig): Map<string, string> {
  const named = new Map<string, string>();
  if (security.anonymous) named.set(security.anonymous.tenant, 'security.anonymous.tenant');
  for (const t of Object.keys(security.limits?.tenants ?? {})) if (!named.has(t)) named.set(t, `security.limits.tenants.${t}`);
  return named;
}

const quoted = (names: Iterable<string>) => [...names].map((n) => `"${n}"`).join(', ');

export function checkTenants(config: Config, baseDir: string): CheckResult[] {
  if (!config.security) return [];
  let security: SecurityConfig;
  let file: string | null;
  try {
    ({ config: security, file } = loadSecurityConfig(config.security, { baseDir }));
  } catch (err) {
    return [fail('security', errorMessage(err))];
  }
  const results = [ok('security', `${file ?? 'the inline security settings'}: valid, ${Object.keys(security.roles).length} role(s)`)];
  const { fixed, fromData } = topicTenants(config);
  if (!config.postgres && !config.kafka) return results;
  const dataNote = fromData.length > 0 ? `; and the tenants read from the data by ${fromData.join(', ')}` : '';
  for (const [tenant, where] of namedTenants(security)) {
    if (fixed.has(tenant) || fromData.length > 0) continue;
    results.push(
      warn(
        `tenant ${tenant}`,
        `${where} names tenant "${tenant}", but no mapping gives it a topic (topics belong to ${quoted(fixed)}): its sessions can never see one and get 404 for everything. ` +
          `A mapping without tenant or tenantColumn belongs to tenant "${DEFAULT_TENANT}": set tenant: ${tenant} (or tenantColumn) on the mappings it should see`,
      ),
    );
  }
  if (!security.jwt) return results;
  const claim = security.jwt.tenantClaim;
  if (fromData.length === 0 && fixed.size === 1 && fixed.has(DEFAULT_TENANT)) {
    results.push(
      warn(
        'tenants',
        `every topic belongs to tenant "${DEFAULT_TENANT}" (no mapping sets tenant or tenantColumn/tenantField), so only tokens whose "${claim}" claim is "${DEFAULT_TENANT}" see anything: ` +
          `a token of tenant "acme" gets 404 for every topic, the reason only in the audit log. Set tenant (or tenantColumn) on the mappings, or issue tokens with ${claim}: ${DEFAULT_TENANT} (docs/SECURITY.md, "Tenants")`,
      ),
    );
  } else {
    results.push(ok('tenants', `topics belong to ${fixed.size > 0 ? `tenant(s) ${quoted(fixed)}` : 'no fixed tenant'}${dataNote}; a token's "${claim}" claim picks the one it sees`));
  }
  return results;
}

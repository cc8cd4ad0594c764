// `tidewire check` warns when a token's tenant can never see a topic: mappings without a tenant belong to "default".
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkTenants } from '../../../services/cli/tenant-checks.ts';
import { parseConfig } from '../../../services/config/config.ts';

const SECRET = 'x'.repeat(40);
const jwt = { algorithms: ['HS256'], secret: SECRET };
const roles = { trader: { read: ['orders/**'] } };
const orders = (extra: object = {}) => ({ url: 'postgres://u@db/shop', tables: [{ table: 'public.orders', path: 'orders/{customer_id}/{id}', ...extra }] });
const check = (input: object, dir = tmpdir()) => checkTenants(parseConfig(input, {}), dir).map((r) => `${r.status} ${r.name}: ${r.detail}`);

test('tables mapped without a tenant belong to "default": tokens of tenant acme would get 404 for everything — a warning says so', () => {
  const lines = check({ postgres: orders(), security: { jwt, roles } });
  assert.equal(lines[0], 'ok security: the inline security settings: valid, 1 role(s)');
  assert.equal(lines.length, 2);
  assert.match(lines[1], /^warn tenants: every topic belongs to tenant "default" \(no mapping sets tenant or tenantColumn\/tenantField\), so only tokens whose "tenant" claim is "default" see anything: a token of tenant "acme" gets 404 for every topic/);
  assert.match(lines[1], /Set tenant \(or tenantColumn\) on the mappings, or issue tokens with tenant: default/);
});

test('a tenant the security settings name (limits, anonymous) that no mapping gives a topic is warned about by name', () => {
  const lines = check({ postgres: orders({ tenant: 'acme' }), security: { jwt, anonymous: { role: 'trader', tenant: 'public' }, roles, limits: { tenants: { acme: { connections: 5 }, globex: { connections: 5 } } } } });
  assert.deepEqual(lines.map((l) => l.split(':')[0]), ['ok security', 'warn tenant public', 'warn tenant globex', 'ok tenants']);
  assert.match(lines[1], /^warn tenant public: security\.anonymous\.tenant names tenant "public", but no mapping gives it a topic \(topics belong to "acme"\): its sessions can never see one and get 404 for everything\. A mapping without tenant or tenantColumn belongs to tenant "default": set tenant: public/);
  assert.match(lines[2], /security\.limits\.tenants\.globex names tenant "globex"/);
  assert.equal(lines[3], 'ok tenants: topics belong to tenant(s) "acme"; a token\'s "tenant" claim picks the one it sees');
});

test('a tenant column or field may give any tenant: no warning, the mappings are named', () => {
  const lines = check({
    postgres: { ...orders({ tenantColumn: 'customer_id' }) },
    kafka: { brokers: ['k:9092'], topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}', tenantField: 'value.org' }] },
    security: { jwt: { ...jwt, tenantClaim: 'org' }, roles, limits: { tenants: { acme: {} } } },
  });
  assert.deepEqual(lines, [
    'ok security: the inline security settings: valid, 1 role(s)',
    'ok tenants: topics belong to no fixed tenant; and the tenants read from the data by postgres.tables.0 (public.orders, tenantColumn customer_id), kafka.topics.0 (tenantField value.org); a token\'s "org" claim picks the one it sees',
  ]);
});

test('no security: nothing to check; a broken security file fails the check with its key', () => {
  assert.deepEqual(check({ postgres: orders() }), []);
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-tenant-checks-'));
  writeFileSync(join(dir, 'security.yaml'), 'jwt:\n  algorithms: [HS256]\nroles: {}\n');
  const lines = check({ postgres: orders(), security: { file: './security.yaml' } }, dir);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^fail security: .*security\.yaml\.jwt\.secret: is required for HS256/);
});

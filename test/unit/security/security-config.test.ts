/** The security configuration: schema, environment secrets, role graphs, grant patterns with claims. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import { readClaim, rolesFrom, tenantFrom } from '../../../services/security/claims.ts';
import { compileGrant, instantiate } from '../../../services/security/grant-pattern.ts';
import { compileRoles } from '../../../services/security/role-graph.ts';
import { loadSecurityConfig, tenantLimits } from '../../../services/security/security-config.ts';
import { matches } from '../../../core/selector.ts';

const SECRET = 's'.repeat(32);

function configError(fn: () => unknown, key: RegExp | string, message?: RegExp): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    if (typeof key === 'string') assert.equal(err.key, key, err.message);
    else assert.match(err.key, key, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('loadSecurityConfig', () => {
  it('fills in the jwt defaults', () => {
    const { config, file } = loadSecurityConfig({ jwt: { algorithms: ['HS256'], secret: SECRET }, roles: {} }, { env: {} });
    assert.equal(file, null);
    assert.deepEqual(
      { ...config.jwt, secret: undefined },
      {
        algorithms: ['HS256'], secret: undefined, rolesClaim: 'roles', tenantClaim: 'tenant', clockToleranceSec: 5, requireExpiry: true,
        maxTokenBytes: 8192, jwksCooldownMs: 30000, jwksCacheMaxAgeMs: 600000, jwksTimeoutMs: 5000,
      },
    );
  });

  it('takes secrets from TIDEWIRE_JWT_SECRET and TIDEWIRE_JWT_PUBLIC_KEY', () => {
    const env = { TIDEWIRE_JWT_SECRET: 'e'.repeat(40), TIDEWIRE_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----x' };
    const { config } = loadSecurityConfig({ jwt: { algorithms: ['HS256', 'RS256'] }, roles: {} }, { env });
    assert.equal(config.jwt!.secret, 'e'.repeat(40));
    assert.equal(config.jwt!.publicKey, '-----BEGIN PUBLIC KEY-----x');
  });

  it('refuses `none` and unknown algorithms, short secrets, and a missing key', () => {
    configError(() => loadSecurityConfig({ jwt: { algorithms: ['none'], secret: SECRET }, roles: {} }, { env: {} }), 'security.jwt.algorithms.0', /one of/);
    configError(() => loadSecurityConfig({ jwt: { algorithms: ['HS256'], secret: 'short' }, roles: {} }, { env: {} }), 'security.jwt.secret');
    configError(() => loadSecurityConfig({ jwt: { algorithms: ['HS256'] }, roles: {} }, { env: {} }), 'security.jwt.secret', /TIDEWIRE_JWT_SECRET/);
    configError(() => loadSecurityConfig({ jwt: { algorithms: ['RS256'] }, roles: {} }, { env: {} }), 'security.jwt.publicKey', /jwksUrl/);
    configError(() => loadSecurityConfig({ jwt: { algorithms: [] }, roles: {} }, { env: {} }), 'security.jwt.algorithms');
  });

  it('requires jwt unless anonymous access is configured, and the anonymous role must exist', () => {
    configError(() => loadSecurityConfig({ roles: {} }, { env: {} }), 'security.jwt', /anonymous/);
    assert.ok(loadSecurityConfig({ anonymous: { role: 'public', tenant: 'public' }, roles: { public: { read: ['prices/**'] } } }, { env: {} }));
    configError(() => loadSecurityConfig({ anonymous: { role: 'nope', tenant: 'public' }, roles: {} }, { env: {} }), 'security.anonymous.role', /not defined/);
  });

  it('names unknown settings', () => {
    configError(() => loadSecurityConfig({ jwt: { algorithms: ['HS256'], secret: SECRET, issuers: 'x' }, roles: {} }, { env: {} }), 'security.jwt.issuers', /not a known setting/);
    configError(() => loadSecurityConfig({ jwt: { algorithms: ['HS256'], secret: SECRET }, roles: { r: { read: [{ pattern: 'a/**', fields: { include: ['a'], exclude: ['b'] } }] } } }, { env: {} }), /security\.roles\.r\.read\.0/);
  });

  it('reads { file } (YAML or JSON) relative to baseDir, and says which file is broken', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidewire-sec-'));
    try {
      writeFileSync(join(dir, 'security.yaml'), `jwt:\n  algorithms: [HS256]\n  secret: ${SECRET}\nroles:\n  trader:\n    read: ['orderbook/**']\n`);
      const { config, file } = loadSecurityConfig({ file: 'security.yaml' }, { baseDir: dir, env: {} });
      assert.equal(file, join(dir, 'security.yaml'));
      assert.deepEqual(config.roles.trader.read, ['orderbook/**']);
      writeFileSync(join(dir, 'bad.json'), '{"roles": ');
      configError(() => loadSecurityConfig({ file: 'bad.json' }, { baseDir: dir, env: {} }), join(dir, 'bad.json'), /not valid JSON/);
      configError(() => loadSecurityConfig({ file: 'missing.yaml' }, { baseDir: dir, env: {} }), join(dir, 'missing.yaml'), /ENOENT/);
      configError(() => loadSecurityConfig({ file: 'security.yaml', roles: {} }, { baseDir: dir, env: {} }), 'security.file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tenant limits: own entry over default over built-in defaults', () => {
    const { config } = loadSecurityConfig(
      { jwt: { algorithms: ['HS256'], secret: SECRET }, roles: {}, limits: { default: { connections: 50 }, tenants: { acme: { messagesPerSecond: 5 } } } },
      { env: {} },
    );
    assert.deepEqual(tenantLimits(config, 'acme'), { connections: 50, subscriptionsPerSession: 1000, messagesPerSecond: 5 });
    assert.deepEqual(tenantLimits(config, 'other'), { connections: 50, subscriptionsPerSession: 1000, messagesPerSecond: 200 });
    assert.deepEqual(tenantLimits(config, '__proto__'), { connections: 50, subscriptionsPerSession: 1000, messagesPerSecond: 200 });
  });
});

describe('compileRoles', () => {
  it('gives a role the grants of the roles it includes, transitively, without duplicates', () => {
    const roles = compileRoles({
      base: { read: ['public/**'] },
      trader: { include: ['base'], read: ['orderbook/**', 'public/**'] },
      lead: { include: ['trader', 'base'], admin: true },
    });
    assert.deepEqual(roles.get('lead')!.grants.map((g) => g.text).sort(), ['orderbook/**', 'public/**']);
    assert.equal(roles.get('lead')!.admin, true);
    assert.equal(roles.get('trader')!.admin, false);
  });

  it('refuses include cycles, naming the chain', () => {
    configError(() => compileRoles({ a: { include: ['b'] }, b: { include: ['c'] }, c: { include: ['a'] } }), /security\.roles\.\w\.include/, /a → b → c → a/);
    configError(() => compileRoles({ a: { include: ['a'] } }), 'security.roles.a.include', /a → a/);
    configError(() => compileRoles({ a: { include: ['ghost'] } }), 'security.roles.a.include', /"ghost"/);
  });

  it('refuses patterns that are not selectors, and claims that are not whole segments', () => {
    configError(() => compileRoles({ r: { read: ['**/x'] } }), 'security.roles.r.read.0', /only be the last/);
    configError(() => compileRoles({ r: { read: ['orders/x{claims.id}/**'] } }), 'security.roles.r.read.0', /whole segment/);
    configError(() => compileRoles({ r: { read: ['orders/{claim.id}/**'] } }), 'security.roles.r.read.0', /whole segment/);
    configError(() => compileRoles({ r: { read: ['orders//x'] } }), 'security.roles.r.read.0', /empty segment/);
  });
});

describe('grant patterns with claims', () => {
  const t = compileGrant('orders/{claims.customer_id}/**', 'k');
  const texts = (claims: Record<string, unknown>) => instantiate(t, claims).map((s) => s.text);

  it('substitute the claim as one encoded segment', () => {
    assert.deepEqual(texts({ customer_id: 7 }), ['orders/7/**']);
    assert.deepEqual(texts({ customer_id: 'acme ltd' }), ['orders/acme%20ltd/**']);
    assert.deepEqual(texts({ customer_id: [7, 8] }), ['orders/7/**', 'orders/8/**']);
  });

  it('never let a claim add wildcards or levels', () => {
    for (const hostile of ['*', '**', 'a/b', '..', '.', '%2F', '7/**', '~', '']) {
      const [s] = instantiate(t, { customer_id: hostile });
      assert.equal(s.segments.length, 2, `${JSON.stringify(hostile)} → ${s.text}`);
      assert.notEqual(s.segments[1], '*');
      assert.ok(!matches(s, 'orders/8/1'), `${JSON.stringify(hostile)} must not reach orders/8/1`);
      assert.ok(!matches(s, 'orders/*/1'));
    }
  });

  it('match nothing when the claim is missing, null, an object, or a list of those', () => {
    for (const claims of [{}, { customer_id: null }, { customer_id: { id: 7 } }, { customer_id: [] }, { customer_id: [7, null] }, { customer_id: NaN }]) {
      assert.deepEqual(texts(claims), [], JSON.stringify(claims));
    }
  });

  it('read nested claims by dotted name, literal names first', () => {
    const nested = compileGrant('t/{claims.org.id}/**', 'k');
    assert.deepEqual(instantiate(nested, { org: { id: 'x' } }).map((s) => s.text), ['t/x/**']);
    assert.deepEqual(instantiate(nested, { 'org.id': 'lit', org: { id: 'x' } }).map((s) => s.text), ['t/lit/**']);
    assert.equal(readClaim({ a: { b: 1 } }, 'a.c'), undefined);
    assert.equal(readClaim({ a: [1] }, 'a.0'), undefined);
  });
});

describe('claims', () => {
  it('roles: an array, or space/comma-separated names; sorted, deduplicated', () => {
    assert.deepEqual(rolesFrom({ roles: ['b', 'a', 'b', 3] }, 'roles'), ['a', 'b']);
    assert.deepEqual(rolesFrom({ roles: 'trader  viewer,x' }, 'roles'), ['trader', 'viewer', 'x']);
    assert.deepEqual(rolesFrom({ realm_access: { roles: ['r'] } }, 'realm_access.roles'), ['r']);
    assert.deepEqual(rolesFrom({ roles: { admin: true } }, 'roles'), []);
  });

  it('tenant: a non-empty short string or a number', () => {
    assert.equal(tenantFrom({ tenant: 'acme' }, 'tenant'), 'acme');
    assert.equal(tenantFrom({ tenant: 42 }, 'tenant'), '42');
    for (const v of [undefined, '', null, ['acme'], { id: 1 }, 'x'.repeat(129)]) assert.equal(tenantFrom({ tenant: v }, 'tenant'), null);
  });
});

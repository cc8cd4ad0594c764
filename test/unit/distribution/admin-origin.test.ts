/** Issue #13: admin scopes as compiled from the roles, and the Origin rules of /ws, case by case. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../../services/config/config.ts';
import { DistributionServer } from '../../../services/distribution/index.ts';
import { OriginPolicy, isLoopbackName } from '../../../services/distribution/origin-policy.ts';
import { InProcessHandoff } from '../../../services/handoff/handoff.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { compileRoles } from '../../../services/security/role-graph.ts';
import { loadSecurityConfig } from '../../../services/security/security-config.ts';

describe('admin scopes', () => {
  it('server and tenant; true is a tenant admin; an include gives the widest scope', () => {
    const roles = compileRoles({
      root: { admin: 'server' },
      ops: { admin: 'tenant' },
      legacy: { admin: true },
      reader: { read: ['a/**'] },
      lead: { include: ['ops', 'root'] },
      deputy: { include: ['legacy', 'reader'] },
    });
    const scope = (n: string) => roles.get(n)!.adminScope;
    assert.deepEqual(['root', 'ops', 'legacy', 'reader', 'lead', 'deputy'].map(scope), ['server', 'tenant', 'tenant', null, 'server', 'tenant']);
  });

  it('the schema takes server, tenant, true and false, and nothing else', () => {
    const load = (admin: unknown) => loadSecurityConfig({ jwt: { algorithms: ['HS256'], secret: 'x'.repeat(32) }, roles: { r: { admin } } }, { env: {} });
    for (const ok of ['server', 'tenant', true, false]) load(ok);
    assert.throws(() => load('everything'), /security\.roles\.r\.admin: must be one of false, tenant, server, true/);
    assert.equal(load('server').config.reload, undefined);
    assert.throws(() => loadSecurityConfig({ jwt: { algorithms: ['HS256'], secret: 'x'.repeat(32) }, roles: {}, reload: { minIntervalMs: -1 } }, { env: {} }), /reload\.minIntervalMs/);
  });
});

describe('OriginPolicy', () => {
  const off = new OriginPolicy(undefined, false);
  const on = new OriginPolicy(undefined, true);
  const listed = new OriginPolicy(['https://App.Example.com:443', 'http://dash.lan:8080'], false);

  it('loopback names', () => {
    for (const h of ['localhost', 'a.localhost', '127.0.0.1', '127.8.9.10', '[::1]']) assert.ok(isLoopbackName(h), h);
    for (const h of ['localhost.evil.test', '128.0.0.1', '10.0.0.1', '[::2]', 'evil.test']) assert.ok(!isLoopbackName(h), h);
  });

  it('security off: no Origin, loopback and same-origin by address only', () => {
    assert.ok(off.allows(undefined, 'x:1'));
    assert.ok(off.allows('http://localhost:3000', 'evil.test'));
    assert.ok(off.allows('http://192.168.1.5:8080', '192.168.1.5:8080'));
    assert.ok(off.allows('https://[fd00::1]:8443', '[fd00::1]:8443'));
    assert.ok(!off.allows('http://evil.test:8080', 'evil.test:8080'), 'DNS rebinding');
    assert.ok(!off.allows('http://192.168.1.5:8080', '192.168.1.5:8081'));
    assert.ok(!off.allows('null', 'localhost:8080'));
    assert.ok(!off.allows('file://', 'localhost:8080'));
  });

  it('security on admits any origin unless a list is set; a list is exact and normalised', () => {
    assert.ok(on.allows('https://anything.example', 'tidewire:8080'));
    assert.ok(listed.allows('https://app.example.com', 'tidewire:8080'));
    assert.ok(listed.allows('http://dash.lan:8080', 'tidewire:8080'));
    assert.ok(!listed.allows('http://dash.lan', 'tidewire:8080'));
    assert.ok(!listed.allows('http://localhost:3000', 'tidewire:8080'));
    assert.throws(() => new OriginPolicy(['https://a.example/x'], false), /server\.allowedOrigins\.0: must be an exact origin/);
  });
});

describe('connection bounds in the configuration', () => {
  it('are bounded by the schema and checked again on a ServerConfig built by hand', () => {
    assert.throws(() => parseConfig({ server: { handshakeTimeoutMs: 50 } }, {}), /server\.handshakeTimeoutMs: must be >= 100/);
    assert.throws(() => parseConfig({ server: { maxPendingConnections: 0 } }, {}), /server\.maxPendingConnections: must be >= 1/);
    assert.throws(() => parseConfig({ server: { maxPendingConnectionsPerAddress: 1.5 } }, {}), /server\.maxPendingConnectionsPerAddress: must be integer/);
    const server = parseConfig({}, {}).server;
    assert.equal(server.handshakeTimeoutMs, 10_000);
    assert.equal(server.maxPendingConnections, 1024);
    assert.equal(server.maxPendingConnectionsPerAddress, 256);
    const build = (extra: object) => new DistributionServer(new InProcessHandoff(new TopicStore()), { ...server, ...extra }, { logger: pino({ level: 'silent' }) });
    assert.throws(() => build({ handshakeTimeoutMs: 0 }), /server\.handshakeTimeoutMs/);
    assert.throws(() => build({ maxPendingConnections: -1 }), /server\.maxPendingConnections/);
    assert.throws(() => build({ allowedOrigins: ['*'] }), /server\.allowedOrigins\.0/);
  });
});

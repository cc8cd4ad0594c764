/** Bearer tokens: every way a token can be wrong is refused, with the precise reason for the audit log only. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignJWT, base64url, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import pino from 'pino';
import { Writable } from 'node:stream';
import { loadSecurityConfig } from '../../../services/security/security-config.ts';
import { SecurityManager } from '../../../services/security/security-manager.ts';
import { TokenVerifier } from '../../../services/security/token-verifier.ts';

const SECRET = 'tidewire-test-secret-0123456789abcdef';
const now = () => Math.floor(Date.now() / 1000);

function verifier(jwt: Record<string, unknown>): TokenVerifier {
  return new TokenVerifier(loadSecurityConfig({ jwt, roles: {} }, { env: {} }).config.jwt!);
}

function hs(claims: Record<string, unknown>, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

const base = () => ({ sub: 'alice', tenant: 'acme', roles: ['trader'], exp: now() + 60 });

describe('TokenVerifier (HS256)', () => {
  const v = verifier({ algorithms: ['HS256'], secret: SECRET, issuer: 'https://idp.example', audience: 'tidewire', clockToleranceSec: 0 });
  const good = (extra: Record<string, unknown> = {}) => hs({ ...base(), iss: 'https://idp.example', aud: 'tidewire', ...extra });
  const reason = async (token: string | Promise<string>) => {
    const r = await v.verify(await token);
    return r.ok ? 'ok' : r.reason;
  };

  it('accepts a valid token and returns its claims', async () => {
    const r = await v.verify(await good({ customer_id: 7 }));
    assert.ok(r.ok);
    assert.equal(r.claims.sub, 'alice');
    assert.equal(r.claims.customer_id, 7);
  });

  it('refuses a forged token (another secret) and a tampered payload', async () => {
    assert.equal(await reason(hs({ ...base(), iss: 'https://idp.example', aud: 'tidewire' }, 'another-secret-another-secret-xx')), 'bad-signature');
    const [h, , s] = (await good()).split('.');
    const forgedPayload = base64url.encode(JSON.stringify({ ...base(), sub: 'mallory', iss: 'https://idp.example', aud: 'tidewire' }));
    assert.equal(await reason(`${h}.${forgedPayload}.${s}`), 'bad-signature');
  });

  it('refuses alg: none, with or without a signature', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ ...base(), iss: 'https://idp.example', aud: 'tidewire' }));
    for (const token of [`${header}.${payload}.`, `${header}.${payload}.${base64url.encode('x')}`]) {
      const r = await reason(token);
      assert.ok(r === 'algorithm-not-allowed' || r === 'malformed', r);
    }
  });

  it('refuses algorithms that are not configured (HS512 when only HS256 is)', async () => {
    assert.equal(await reason(hs({ ...base(), iss: 'https://idp.example', aud: 'tidewire' }, SECRET, 'HS512')), 'algorithm-not-allowed');
  });

  it('refuses expired, not yet valid, exp-less and sub-less tokens', async () => {
    assert.equal(await reason(good({ exp: now() - 1 })), 'expired');
    assert.equal(await reason(good({ nbf: now() + 60 })), 'not-yet-valid');
    assert.equal(await reason(hs({ sub: 'alice', tenant: 'acme', iss: 'https://idp.example', aud: 'tidewire' })), 'missing-claim');
    assert.equal(await reason(hs({ tenant: 'acme', exp: now() + 60, iss: 'https://idp.example', aud: 'tidewire' })), 'missing-claim');
  });

  it('refuses a token issued in the future (iat beyond the clock tolerance), like nbf', async () => {
    assert.equal(await reason(good({ iat: now() + 3600 })), 'not-yet-valid', 'iat an hour ahead');
    assert.equal(await reason(good({ iat: now() + 5 })), 'not-yet-valid', 'no tolerance configured');
    assert.equal(await reason(good({ iat: now() - 10 })), 'ok', 'iat in the past');
    const tolerant = verifier({ algorithms: ['HS256'], secret: SECRET, clockToleranceSec: 30 });
    const check = async (iat: number) => {
      const r = await tolerant.verify(await hs({ ...base(), iat }));
      return r.ok ? 'ok' : r.reason;
    };
    assert.equal(await check(now() + 10), 'ok', 'within the tolerance');
    assert.equal(await check(now() + 3600), 'not-yet-valid', 'beyond the tolerance');
  });

  it('refuses the wrong issuer or audience', async () => {
    assert.equal(await reason(good({ iss: 'https://evil.example' })), 'wrong-issuer');
    assert.equal(await reason(good({ aud: 'someone-else' })), 'wrong-audience');
  });

  it('refuses garbage and oversized tokens without parsing them', async () => {
    for (const t of ['x', 'a.b.c', '...', 'eyJhbGciOiJIUzI1NiJ9.e30']) assert.equal(await reason(t), 'malformed', t);
    assert.equal(await reason('a'.repeat(9000)), 'token-too-large');
    assert.equal(await reason(''), 'missing-token');
  });
});

describe('TokenVerifier (RS256 / ES256 keys)', () => {
  it('verifies RS256 with a PEM key, refuses another key and the HS256 key-confusion attack', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const other = await generateKeyPair('RS256');
    const pem = await exportSPKI(publicKey);
    const v = verifier({ algorithms: ['RS256'], publicKey: pem });
    const sign = (key: CryptoKey) => new SignJWT(base()).setProtectedHeader({ alg: 'RS256' }).sign(key);
    assert.ok((await v.verify(await sign(privateKey))).ok);
    const wrong = await v.verify(await sign(other.privateKey));
    assert.equal(wrong.ok ? 'ok' : wrong.reason, 'bad-signature');
    // The classic attack: an HS256 token "signed" with the public key's PEM text as the secret.
    const confused = await v.verify(await hs(base(), pem));
    assert.equal(confused.ok ? 'ok' : confused.reason, 'algorithm-not-allowed');
  });

  it('verifies ES256 with a JWK (object or JSON text, e.g. from TIDEWIRE_JWT_PUBLIC_KEY)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const token = await new SignJWT(base()).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    assert.ok((await verifier({ algorithms: ['ES256'], publicKey: jwk }).verify(token)).ok);
    const fromEnv = new TokenVerifier(loadSecurityConfig({ jwt: { algorithms: ['ES256'] }, roles: {} }, { env: { TIDEWIRE_JWT_PUBLIC_KEY: JSON.stringify(jwk) } }).config.jwt!);
    assert.ok((await fromEnv.verify(token)).ok);
  });

  it('refuses a key that cannot be imported at construction, naming the setting', () => {
    assert.throws(() => verifier({ algorithms: ['RS256'], publicKey: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }), /security\.jwt\.publicKey/);
  });
});

describe('SecurityManager.authenticate', () => {
  function manager(extra: Record<string, unknown> = {}) {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
    const m = SecurityManager.fromConfig(
      { jwt: { algorithms: ['HS256'], secret: SECRET, ...extra }, roles: { trader: { read: ['orders/**'] }, public: { read: ['prices/**'] } } },
      { logger: pino({ level: 'info' }, sink), env: {} },
    );
    return { m, lines };
  }

  it('derives subject, tenant, roles and expiry (exp + tolerance)', async () => {
    const { m } = manager({ clockToleranceSec: 2 });
    const exp = now() + 60;
    const r = await m.authenticate(await hs({ ...base(), exp, roles: 'trader viewer' }), { channel: 'ws' });
    assert.ok(r.ok);
    assert.deepEqual({ ...r.principal, claims: undefined }, { subject: 'alice', tenant: 'acme', roles: ['trader', 'viewer'], claims: undefined, expiresAt: (exp + 2) * 1000, anonymous: false });
  });

  it('refuses a token without a tenant, and audits the precise reason', async () => {
    const { m, lines } = manager();
    const r = await m.authenticate(await hs({ sub: 'alice', exp: now() + 60 }), { channel: 'http', remote: '10.0.0.1:5' });
    assert.equal(r.ok ? 'ok' : r.reason, 'missing-claim');
    const audit = lines.find((l) => l.event === 'auth.failed')!;
    assert.equal(audit.audit, true);
    assert.equal(audit.reason, 'missing-claim');
    assert.equal(audit.channel, 'http');
    assert.equal(audit.remote, '10.0.0.1:5');
    assert.match(String(audit.detail), /tenant/);
  });

  it('uses the configured claims for roles and tenant', async () => {
    const { m } = manager({ rolesClaim: 'realm_access.roles', tenantClaim: 'org' });
    const r = await m.authenticate(await hs({ sub: 'a', exp: now() + 60, org: 'globex', realm_access: { roles: ['trader'] } }), { channel: 'ws' });
    assert.ok(r.ok);
    assert.equal(r.principal.tenant, 'globex');
    assert.deepEqual(r.principal.roles, ['trader']);
  });

  it('no token: refused, unless anonymous access is configured', async () => {
    const { m } = manager();
    const r = await m.authenticate(null, { channel: 'ws' });
    assert.equal(r.ok ? 'ok' : r.reason, 'missing-token');
    const anon = SecurityManager.fromConfig(
      { jwt: { algorithms: ['HS256'], secret: SECRET }, anonymous: { role: 'public', tenant: 'public' }, roles: { public: { read: ['prices/**'] } } },
      { logger: pino({ level: 'silent' }), env: {} },
    );
    const a = await anon.authenticate(null, { channel: 'ws' });
    assert.ok(a.ok);
    assert.deepEqual([a.principal.subject, a.principal.tenant, a.principal.roles, a.principal.expiresAt], ['anonymous', 'public', ['public'], null]);
    const bad = await anon.authenticate('not-a-token', { channel: 'ws' });
    assert.equal(bad.ok, false, 'a bad token is refused, never downgraded to anonymous');
  });

  it('tokenFrom: Bearer header first, then ?access_token=; another scheme is an invalid token', () => {
    const { m } = manager();
    assert.equal(m.tokenFrom({ authorization: 'Bearer abc.def.ghi' }, '/ws?access_token=zzz'), 'abc.def.ghi');
    assert.equal(m.tokenFrom({ authorization: 'bearer  abc' }, '/ws'), 'abc');
    assert.equal(m.tokenFrom({}, '/ws?x=1&access_token=a.b.c'), 'a.b.c');
    assert.equal(m.tokenFrom({}, '/ws'), null);
    assert.equal(m.tokenFrom({ authorization: 'Basic dXNlcjpwYXNz' }, '/ws'), '');
  });

  it('refresh: same subject and tenant only', async () => {
    const { m, lines } = manager();
    const tokens = await Promise.all([hs(base()), hs({ ...base(), roles: [] }), hs({ ...base(), sub: 'bob' }), hs({ ...base(), tenant: 'globex' })]);
    const first = await m.authenticate(tokens[0], { channel: 'ws' });
    assert.ok(first.ok);
    const again = await m.refresh(first.principal, tokens[1], { channel: 'refresh', session: 's1' });
    assert.ok(again.ok);
    const other = await m.refresh(first.principal, tokens[2], { channel: 'refresh' });
    assert.equal(other.ok ? 'ok' : other.reason, 'subject-mismatch');
    const tenant = await m.refresh(first.principal, tokens[3], { channel: 'refresh' });
    assert.equal(tenant.ok ? 'ok' : tenant.reason, 'tenant-mismatch');
    assert.deepEqual(lines.filter((l) => l.audit).map((l) => [l.event, l.reason]), [
      ['auth.refreshed', undefined],
      ['auth.failed', 'subject-mismatch'],
      ['auth.failed', 'tenant-mismatch'],
    ]);
    const logged = JSON.stringify(lines);
    for (const t of tokens) assert.ok(!logged.includes(t.split('.')[2]), 'tokens are never logged');
  });
});

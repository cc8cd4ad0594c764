/**
 * Key rotation through a JWKS URL: a local JWKS server on 127.0.0.1 rotates from key A to key B;
 * tokens signed with B are accepted without a restart, tokens signed with the retired A are
 * refused, and an unreachable key set refuses new keys. Checked on real WebSocket handshakes.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { DistributionServer } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { SecurityManager } from '../../services/security/index.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';

type Pair = { kid: string; privateKey: CryptoKey; jwk: JWK };

async function keyPair(kid: string, alg: 'RS256' | 'ES256'): Promise<Pair> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function sign(key: Pair, alg: 'RS256' | 'ES256', claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ sub: 'alice', tenant: 'acme', roles: ['reader'], ...claims })
    .setProtectedHeader({ alg, kid: key.kid })
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

/** Resolves to the handshake's HTTP status: 101 when accepted. */
function handshake(port: number, token: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    ws.on('error', () => undefined);
  });
}

describe('JWKS key rotation', () => {
  let jwks: Server;
  let jwksPort: number;
  let served: JWK[] = [];
  let fetches = 0;
  let server: DistributionServer;
  let port: number;
  const audit: Array<Record<string, any>> = [];
  let a: Pair;
  let b: Pair;
  let ec: Pair;

  before(async () => {
    [a, b, ec] = await Promise.all([keyPair('key-a', 'RS256'), keyPair('key-b', 'RS256'), keyPair('key-ec', 'ES256')]);
    jwks = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    jwksPort = (jwks.address() as { port: number }).port;
    served = [a.jwk, ec.jwk];
    const sink = new Writable({ write(chunk, _e, cb) { const l = JSON.parse(String(chunk)); if (l.audit) audit.push(l); cb(); } });
    const logger = pino({ level: 'info' }, sink);
    const security = SecurityManager.fromConfig(
      { jwt: { algorithms: ['RS256', 'ES256'], jwksUrl: `http://127.0.0.1:${jwksPort}/.well-known/jwks.json`, jwksCooldownMs: 0, jwksTimeoutMs: 1000 }, roles: { reader: { read: ['**'] } } },
      { logger, env: {} },
    );
    server = new DistributionServer(new InProcessHandoff(new TopicStore()), {
      host: '127.0.0.1', port: 0, maxPayloadBytes: 4096, sendQueueBytes: 1 << 20, flushIntervalMs: 2, maxSubscriptionsPerSession: 10, maxMessagesPerSecond: 50,
    }, { logger, security, heartbeatIntervalMs: 0 });
    ({ port } = await server.listen());
  });

  after(async () => {
    await server.close();
    await new Promise<void>((r) => jwks.close(() => r()));
  });

  it('accepts tokens signed with a key of the set (RS256 and ES256), chosen by kid', async () => {
    assert.equal(await handshake(port, await sign(a, 'RS256')), 101);
    assert.equal(await handshake(port, await sign(ec, 'ES256')), 101);
    assert.equal(fetches, 1, 'the set is fetched once and cached');
  });

  it('after the issuer rotates to a new key, tokens with the new kid are accepted without a restart', async () => {
    served = [b.jwk, ec.jwk];
    assert.equal(await handshake(port, await sign(b, 'RS256')), 101);
    assert.equal(fetches, 2, 'an unknown kid made tidewire fetch the set again');
  });

  it('tokens signed with the retired key are refused', async () => {
    assert.equal(await handshake(port, await sign(a, 'RS256')), 401);
    const last = audit.filter((l) => l.event === 'auth.failed').at(-1)!;
    assert.equal(last.reason, 'unknown-key');
  });

  it('a token signed by a key outside the set, but claiming a known kid, is refused', async () => {
    const impostor = { ...(await keyPair('key-b', 'RS256')) };
    assert.equal(await handshake(port, await sign(impostor, 'RS256')), 401);
    assert.equal(audit.filter((l) => l.event === 'auth.failed').at(-1)!.reason, 'bad-signature');
  });

  it('when the key set cannot be fetched, a token with a new kid is refused (and the reason says so)', async () => {
    await new Promise<void>((r) => jwks.close(() => r()));
    jwks.closeAllConnections();
    const c = await keyPair('key-c', 'RS256');
    assert.equal(await handshake(port, await sign(c, 'RS256')), 401);
    assert.equal(audit.filter((l) => l.event === 'auth.failed').at(-1)!.reason, 'jwks-unavailable');
    assert.equal(await handshake(port, await sign(b, 'RS256')), 101, 'keys already fetched still work');
    jwks.listen(jwksPort, '127.0.0.1');
  });
});

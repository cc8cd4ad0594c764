/**
 * Verifies bearer tokens (JWS-signed JWTs) with jose: only the configured algorithms (`none` is
 * never one), HS* against the shared secret, the others against the configured public key or a
 * remote JWKS chosen by `kid` (an unknown `kid` refetches the set, so issuers can rotate keys).
 * The result says precisely why a token was refused, for the audit log only; clients are told
 * nothing more than "invalid or expired token".
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { type JWTPayload, type JWSHeaderParameters, type FlattenedJWSInput, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { ConfigError } from '../../core/errors.ts';
import type { JwtSettings } from './security-config.ts';

export type AuthFailureReason =
  | 'missing-token'
  | 'token-too-large'
  | 'malformed'
  | 'algorithm-not-allowed'
  | 'bad-signature'
  | 'unknown-key'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'missing-claim'
  | 'invalid-claim'
  | 'jwks-unavailable'
  | 'subject-mismatch'
  | 'tenant-mismatch'
  | 'anonymous-disabled';

export type VerifyResult =
  | { ok: true; claims: JWTPayload }
  | { ok: false; reason: AuthFailureReason; detail: string };

type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<KeyObject | Uint8Array | CryptoKey>;

/** The key set could not be fetched (network, HTTP status): not the token's fault, but it is refused all the same. */
class JwksUnavailable extends Error {
  readonly code = 'JWKS_UNAVAILABLE';
}

export class TokenVerifier {
  private readonly secret: Uint8Array | null;
  private readonly publicKey: KeyObject | null;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | null;
  private readonly resolveKey: KeyResolver;

  constructor(
    private readonly settings: JwtSettings,
    prefix = 'security.jwt',
  ) {
    this.secret = settings.secret ? new TextEncoder().encode(settings.secret) : null;
    this.publicKey = settings.publicKey === undefined ? null : importPublicKey(settings.publicKey, `${prefix}.publicKey`);
    this.jwks = settings.jwksUrl
      ? createRemoteJWKSet(new URL(settings.jwksUrl), {
          cooldownDuration: settings.jwksCooldownMs,
          cacheMaxAge: settings.jwksCacheMaxAgeMs,
          timeoutDuration: settings.jwksTimeoutMs,
        })
      : null;
    this.resolveKey = async (header, token) => {
      if (typeof header.alg === 'string' && header.alg.startsWith('HS')) {
        if (this.secret) return this.secret;
      } else if (this.jwks) {
        // A JWKS and a fixed key together: the set first, the fixed key when the set has no such kid.
        try {
          return await this.jwks(header, token);
        } catch (err) {
          if (err instanceof errors.JWKSNoMatchingKey && this.publicKey) return this.publicKey;
          if (err instanceof errors.JOSEError) throw err;
          throw new JwksUnavailable(`cannot fetch ${settings.jwksUrl}: ${(err as Error)?.message ?? err}`, { cause: err });
        }
      } else if (this.publicKey) {
        return this.publicKey;
      }
      throw new errors.JWKSNoMatchingKey();
    };
  }

  async verify(token: string): Promise<VerifyResult> {
    if (token.length === 0) return { ok: false, reason: 'missing-token', detail: 'empty token' };
    if (token.length > this.settings.maxTokenBytes) {
      return { ok: false, reason: 'token-too-large', detail: `${token.length} characters (limit ${this.settings.maxTokenBytes})` };
    }
    const s = this.settings;
    // One instant for every time claim, so exp, nbf and iat are judged against the same clock.
    const now = Math.floor(Date.now() / 1000);
    try {
      const { payload } = await jwtVerify(token, this.resolveKey, {
        algorithms: s.algorithms,
        issuer: s.issuer,
        audience: s.audience,
        clockTolerance: s.clockToleranceSec,
        currentDate: new Date(now * 1000),
        requiredClaims: s.requireExpiry ? ['exp', 'sub'] : ['sub'],
      });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) return { ok: false, reason: 'invalid-claim', detail: 'sub must be a non-empty string' };
      // jose checks only that iat is a number (its age only with maxTokenAge): a token issued in
      // the future is refused here, with the tolerance exp and nbf get (issue #13).
      if (payload.iat !== undefined && payload.iat > now + s.clockToleranceSec) {
        return { ok: false, reason: 'not-yet-valid', detail: `"iat" claim ${payload.iat} is in the future (now ${now}, clock tolerance ${s.clockToleranceSec} s)` };
      }
      return { ok: true, claims: payload };
    } catch (err) {
      return failure(err);
    }
  }
}

function importPublicKey(key: string | Record<string, unknown>, configKey: string): KeyObject {
  try {
    if (typeof key === 'object') return createPublicKey({ key: key as never, format: 'jwk' });
    const text = key.trim();
    if (text.startsWith('{')) return createPublicKey({ key: JSON.parse(text), format: 'jwk' });
    return createPublicKey(text.replace(/\\n/g, '\n'));
  } catch (err) {
    throw new ConfigError(configKey, `is not a usable public key (PEM "-----BEGIN PUBLIC KEY-----" or a JWK): ${(err as Error).message}`, { cause: err });
  }
}

function failure(err: unknown): VerifyResult {
  const code = (err as { code?: unknown })?.code;
  const detail = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return { ok: false, reason: 'expired', detail };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason } = err as errors.JWTClaimValidationFailed;
      if (reason === 'missing') return { ok: false, reason: 'missing-claim', detail };
      if (claim === 'iss') return { ok: false, reason: 'wrong-issuer', detail };
      if (claim === 'aud') return { ok: false, reason: 'wrong-audience', detail };
      if (claim === 'nbf') return { ok: false, reason: 'not-yet-valid', detail };
      return { ok: false, reason: 'invalid-claim', detail };
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return { ok: false, reason: 'algorithm-not-allowed', detail };
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return { ok: false, reason: 'bad-signature', detail };
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return { ok: false, reason: 'unknown-key', detail };
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'JWKS_UNAVAILABLE':
      return { ok: false, reason: 'jwks-unavailable', detail };
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return { ok: false, reason: 'malformed', detail };
  }
  // Anything else (e.g. jose's TypeError for a key of the wrong type for the header's alg, an
  // RSA key for an ES256 token) still refuses the token.
  return { ok: false, reason: 'unknown-key', detail };
}

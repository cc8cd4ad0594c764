/**
 * The audit trail: one structured pino record per security decision, on a child logger with
 * `audit: true` so operators can route it apart (e.g. `jq 'select(.audit)'`). Each record has an
 * `event` name from AuditEvent. Tokens are never logged; the precise reason a token was refused
 * is logged here and nowhere else.
 *
 * The records of a denied topic or subscription are written after the current turn of the event
 * loop (setImmediate), once the answer has gone out: a denial must take as long to answer as a
 * path with nothing there, or the time would tell that it exists (issue #13).
 */
import type { Logger } from 'pino';
import type { AuthFailureReason } from './token-verifier.ts';

export type AuditEvent =
  | 'connection.accepted'
  | 'auth.failed'
  | 'auth.refreshed'
  | 'session.expired'
  | 'session.revoked'
  | 'subscription.denied'
  | 'subscription.reduced'
  | 'topic.denied'
  | 'limit.exceeded'
  | 'reload.applied'
  | 'reload.failed'
  | 'admin.denied';

/** Where a request came from: `ws` handshake, `http` request, or an `auth` message on a session. */
export type AuthChannel = 'ws' | 'http' | 'refresh';

export interface Who {
  readonly subject: string;
  readonly tenant: string;
  readonly roles?: readonly string[];
  readonly session?: string;
  readonly remote?: string;
}

export class AuditLog {
  readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger.child({ audit: true });
  }

  connectionAccepted(who: Who & { anonymous: boolean; expiresAt: number | null }): void {
    this.logger.info({ event: 'connection.accepted', ...who }, 'connection accepted');
  }

  authFailed(f: { channel: AuthChannel; reason: AuthFailureReason; detail: string; remote?: string; subject?: string; tenant?: string }): void {
    this.logger.warn({ event: 'auth.failed', ...f }, 'authentication refused');
  }

  refreshed(who: Who & { expiresAt: number | null }): void {
    this.logger.info({ event: 'auth.refreshed', ...who }, 'token refreshed');
  }

  expired(who: Who): void {
    this.logger.info({ event: 'session.expired', ...who }, 'session closed: token expired');
  }

  revoked(who: Who & { why: string }): void {
    this.logger.warn({ event: 'session.revoked', ...who }, 'session closed: access revoked');
  }

  subscription(who: Who & { selector: string; coverage: 'part' | 'none' }): void {
    const event = who.coverage === 'none' ? 'subscription.denied' : 'subscription.reduced';
    const why = who.coverage === 'none' ? 'no read grant matches the selector' : 'the selector reaches beyond the read grants; it matches fewer topics';
    setImmediate(() => this.logger.info({ event, ...who, why }, why));
  }

  topicDenied(who: Who & { path: string; why: string }): void {
    setImmediate(() => this.logger.info({ event: 'topic.denied', ...who }, 'topic request denied'));
  }

  limitExceeded(who: Who & { limit: string; value: number }): void {
    this.logger.warn({ event: 'limit.exceeded', ...who }, `tenant limit ${who.limit} (${who.value}) reached`);
  }

  reloaded(r: { by: string; source: string; roles: number; generation: number }): void {
    this.logger.info({ event: 'reload.applied', ...r }, 'security configuration reloaded');
  }

  reloadFailed(r: { by: string; source: string; error: string }): void {
    this.logger.error({ event: 'reload.failed', ...r }, 'security configuration reload failed: the previous configuration stays in force');
  }

  adminDenied(who: Who & { action: string }): void {
    this.logger.warn({ event: 'admin.denied', ...who }, 'admin action denied');
  }
}

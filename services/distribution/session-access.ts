/**
 * The security side of one session: who it is (Principal), what it may read (the PermissionSet
 * it shares with every session of the same tenant and grants), its tenant's limits, its
 * connection lease and the timer that ends it when its token expires. A session without
 * security has none of this (Session.access is null).
 */
import type { Who } from '../security/audit.ts';
import { type PermissionSet, projectedValueMessage } from '../security/permission-set.ts';
import type { Principal, SecurityManager } from '../security/security-manager.ts';
import type { TenantLimits } from '../security/security-config.ts';
import type { ConnectionLease } from '../security/tenant-connections.ts';
import type { Selector } from '../topics/selector.ts';
import type { TopicView } from '../topics/topic-store.ts';
import { accessRemovalMessage } from './protocol.ts';

/** setTimeout's longest delay; a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SessionAccess {
  principal: Principal;
  permissions: PermissionSet;
  limits: TenantLimits;
  private timer: NodeJS.Timeout | null = null;
  /** `auth` refreshes apply in the order they were sent, whatever order their verification ends in. */
  private refreshes: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(
    readonly security: SecurityManager,
    principal: Principal,
    private readonly lease: ConnectionLease | null,
    private readonly onExpired: () => void,
    private readonly now: () => number = Date.now,
  ) {
    this.principal = principal;
    this.permissions = security.acquire(principal);
    this.limits = security.limitsFor(principal.tenant);
    this.armExpiry();
  }

  get tenant(): string {
    return this.principal.tenant;
  }

  who(session: string, remote: string): Who {
    const p = this.principal;
    return { subject: p.subject, tenant: p.tenant, roles: p.roles, session, remote };
  }

  /** Runs `step` after every refresh queued before it. */
  queueRefresh(step: () => Promise<void>): Promise<void> {
    this.refreshes = this.refreshes.then(step);
    return this.refreshes;
  }

  /** Switches to another principal of the same tenant; returns the PermissionSets before and after. */
  switchTo(principal: Principal): { before: PermissionSet; after: PermissionSet } {
    const before = this.permissions;
    const after = this.security.acquire(principal);
    this.security.release(before);
    this.principal = principal;
    this.permissions = after;
    this.limits = this.security.limitsFor(principal.tenant);
    this.armExpiry();
    return { before, after };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.security.release(this.permissions);
    this.lease?.release();
  }

  private armExpiry(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const at = this.principal.expiresAt;
    if (at === null || this.disposed) return;
    const wait = at - this.now();
    if (wait <= 0) {
      // Expired already (a token verified right at its expiry): end on the next turn, never inside a caller's loop.
      this.timer = setTimeout(this.onExpired, 0);
    } else {
      this.timer = setTimeout(() => this.armExpiry(), Math.min(wait, MAX_TIMER_MS));
    }
    this.timer.unref();
  }
}

/**
 * After a session's permissions changed: a removal (`reason: access`) for every topic of its
 * subscriptions it may no longer read, and the current (projected) value of every one it may now
 * read or now sees other fields of. Synchronous, so no change can slip between.
 */
export function reconcile(
  view: TopicView,
  selectors: Iterable<Selector>,
  before: PermissionSet,
  after: PermissionSet,
  send: (wire: string) => void,
): void {
  const seen = new Set<string>();
  for (const selector of selectors) {
    view.forEachMatching(selector, (topic) => {
      if (topic.tenant !== after.tenant || seen.has(topic.path)) return;
      seen.add(topic.path);
      const segments = topic.path.split('/');
      const was = before.access(segments);
      const now = after.access(segments);
      if (was !== null && now === null) send(accessRemovalMessage(topic.path, topic.version));
      else if (now !== null && now !== was) send(projectedValueMessage(topic, topic.version, now));
    });
  }
}

/**
 * The security side of one session: who it is (Principal), what it may read (the PermissionSet
 * it shares with every session of the same tenant and grants), its tenant's limits, its
 * connection lease and the timer that ends it when its token expires. A session without
 * security has none of this (Session.access is null).
 */
import type { Who } from '../security/audit.ts';
import type { PermissionSet } from '../security/permission-set.ts';
import { projectedValueMessage } from '../security/projected-change.ts';
import type { Principal, SecurityManager } from '../security/security-manager.ts';
import type { TenantLimits } from '../security/security-config.ts';
import type { ConnectionLease } from '../security/tenant-connections.ts';
import type { Projection } from '../security/field-projection.ts';
import type { Filter } from '../../core/filter.ts';
import { type Selector, matchesSegments } from '../../core/selector.ts';
import type { Topic, TopicView } from '../../core/topic.ts';
import { accessRemovalMessage, removalMessage } from '../../core/wire.ts';

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

/** What reconcile() needs to know of a subscription. */
export interface ReconciledSubscription {
  readonly selector: Selector;
  readonly filter?: Filter | null;
}

/** Where reconcile() sends, and what it learns of the client's state. */
export interface ReconcileSink {
  send(wire: string): void;
  /** The client holds `held` of the topic now (null: nothing). */
  sent(path: string, held: { version: number; value: Topic['value'] } | null): void;
  /** Whether the client holds the topic, when the session knows better than the current value says (merged topics). */
  heldFor(path: string): boolean | undefined;
}

/**
 * After a session's permissions changed: a removal (`reason: access`) for every topic of its
 * subscriptions it may no longer read, and the current (projected) value of every one it may now
 * read or now sees other fields of. A filter reads the value as the session sees it, so a topic
 * may also start or stop matching (`reason: filter`). Synchronous, so no change can slip between.
 */
export function reconcile(
  view: TopicView,
  subscriptionsOrSelectors: Iterable<ReconciledSubscription | Selector>,
  before: PermissionSet,
  after: PermissionSet,
  sinkOrSend: ReconcileSink | ((wire: string) => void),
): void {
  // Plain selectors and a bare send function: subscriptions without filters, nothing merged.
  const subscriptions = [...subscriptionsOrSelectors].map((s) => ('selector' in s ? s : { selector: s, filter: null }));
  const sink: ReconcileSink = typeof sinkOrSend === 'function' ? { send: sinkOrSend, sent: () => {}, heldFor: () => undefined } : sinkOrSend;
  const seen = new Set<string>();
  for (const { selector } of subscriptions) {
    view.forEachMatching(selector, (topic) => {
      if (topic.tenant !== after.tenant || seen.has(topic.path)) return;
      seen.add(topic.path);
      const segments = topic.path.split('/');
      const was = before.access(segments);
      const now = after.access(segments);
      if (was === now) return;
      const wanted = (p: Projection | null): boolean =>
        p !== null && subscriptions.some((s) => matchesSegments(s.selector, segments) && (s.filter == null || s.filter.test(topic.value, p)));
      const heldBefore = sink.heldFor(topic.path) ?? wanted(was);
      const wantNow = wanted(now);
      if (heldBefore && !wantNow) {
        sink.send(now === null ? accessRemovalMessage(topic.path, topic.version) : removalMessage(topic.path, topic.version, 'filter'));
        sink.sent(topic.path, null);
      } else if (wantNow) {
        sink.send(projectedValueMessage(topic, topic.version, now!));
        sink.sent(topic.path, { version: topic.version, value: topic.value });
      }
    });
  }
}

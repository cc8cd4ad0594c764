/**
 * Routes hand-off batches to sessions. Subscriptions are held in SelectorIndexes, so the sessions
 * interested in a change are found by walking its path once. The change's wire text was
 * serialized once by the topic store; each session gets a reference to the same string, and a
 * change matched by several subscriptions of one session is queued once.
 *
 * Tenants are sealed here, at the lowest level: an authenticated session's subscriptions live in
 * its tenant's own index, and a change is matched only against the index of its topic's tenant,
 * so no selector can ever reach another tenant's topics. Within the tenant, each session's
 * PermissionSet decides (once per change for all sessions sharing it) whether and in which
 * projection the change is sent. Sessions without security (`scope` null) live in `index` and
 * see every topic, as before security existed.
 */
import type { DeliveryContext } from '../security/permission-set.ts';
import { SelectorIndex } from '../topics/selector-index.ts';
import type { ChangeBatch, Topic, TopicChange } from '../topics/topic-store.ts';
import type { Subscription } from './session.ts';

export class FanOut implements DeliveryContext {
  /** Subscriptions of sessions without security: they match topics of every tenant. */
  readonly index = new SelectorIndex<Subscription>();
  private readonly tenants = new Map<string, SelectorIndex<Subscription>>();
  /** The last change fan-out delivered per topic of a tenant with sessions (see PermissionSet). */
  private readonly history = new WeakMap<Topic, TopicChange>();
  readonly owner = this;
  batch = 0;
  previous: TopicChange | undefined = undefined;
  /** Grows by one per change; a session remembers the last stamp it was given. */
  private stamp = 0;
  private change: TopicChange | null = null;
  private segments: readonly string[] = [];
  private bytes = -1;
  // Bound once, so matching allocates no closure per change.
  private readonly visit = (sub: Subscription): void => {
    const session = sub.session;
    if (session.lastChange === this.stamp) return;
    session.lastChange = this.stamp;
    const change = this.change!;
    const permissions = session.permissions;
    if (permissions) {
      const wire = permissions.prepare(change, this.segments, this);
      if (wire === null) return;
      if (wire !== change.wire) {
        session.enqueue(wire, permissions.bytes);
        return;
      }
    }
    if (this.bytes < 0) this.bytes = Buffer.byteLength(change.wire);
    session.enqueue(change.wire, this.bytes);
  };

  /** Live subscriptions, over every index. */
  get size(): number {
    let n = this.index.size;
    for (const idx of this.tenants.values()) n += idx.size;
    return n;
  }

  /**
   * Indexes a subscription. With permissions, under its intersections with the session's grants
   * (a trader's `orders/**` becomes `orders/7/**`), so changes the session may not read never
   * visit it; call again (after remove) when the session's permissions change.
   */
  add(sub: Subscription): void {
    const { scope, permissions } = sub.session;
    if (scope == null) {
      this.index.add(sub.selector, sub);
      return;
    }
    const keys = permissions ? permissions.reach(sub.selector) : [sub.selector];
    sub.indexed = keys;
    if (keys.length === 0) return;
    let idx = this.tenants.get(scope);
    if (!idx) this.tenants.set(scope, (idx = new SelectorIndex()));
    for (const k of keys) idx.add(k, sub);
  }

  remove(sub: Subscription): void {
    const scope = sub.session.scope;
    if (scope == null) {
      this.index.remove(sub.selector, sub);
      return;
    }
    const keys = sub.indexed ?? [sub.selector];
    sub.indexed = [];
    const idx = this.tenants.get(scope);
    if (!idx) return;
    for (const k of keys) idx.remove(k, sub);
    if (idx.size === 0) this.tenants.delete(scope);
  }

  /** Queues every change of the batch for every session subscribed to its path, in order. */
  deliver(batch: ChangeBatch): void {
    if (this.index.size === 0 && this.tenants.size === 0) return;
    this.batch++;
    for (const change of batch.changes) {
      const scoped = this.tenants.get(change.topic.tenant);
      const open = this.index.size > 0 ? this.index : undefined;
      if (!scoped && !open) continue;
      this.stamp++;
      this.change = change;
      this.bytes = -1;
      this.segments = change.topic.path.split('/');
      if (scoped) {
        this.previous = this.history.get(change.topic);
        if (change.type === 'removal') this.history.delete(change.topic);
        else this.history.set(change.topic, change);
        scoped.match(this.segments, this.visit);
      }
      if (open) open.match(this.segments, this.visit);
    }
    this.change = null;
    this.previous = undefined;
    this.segments = [];
  }
}

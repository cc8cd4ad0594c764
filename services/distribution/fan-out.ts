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
 *
 * Sessions with filters, throttles or merged (conflated) topics need a decision of their own per
 * change, taking every one of their subscriptions that matches into account: fan-out gathers
 * those subscriptions during the index walk and hands the change to the session's delivery once
 * the walk is over (session-delivery.ts). Every other session takes the fast path above, which
 * allocates nothing per delivery.
 */
import type { Projection } from '../security/field-projection.ts';
import type { DeliveryContext, PermissionSet } from '../security/permission-set.ts';
import { projectedChange } from '../security/projected-change.ts';
import { SelectorIndex } from '../../core/selector-index.ts';
import type { ChangeBatch, Topic, TopicChange } from '../../core/topic.ts';
import { valueMessage } from '../../core/wire.ts';
import type { Filter } from '../../core/filter.ts';
import type { Selector } from '../../core/selector.ts';

/**
 * What fan-out delivers to: one session. Fan-out owns this seam. The fields it reads and writes
 * for every delivery live on the target itself (with a thousand sessions one more object per
 * delivery measurably costs); changes that need the target's own decision (filters, throttles,
 * merged topics: `simple` false) are gathered per change and handed over once the walk is done.
 */
export interface DeliveryTarget {
  /** Stamp of the last change offered here: a change matched by two subscriptions is offered once. */
  lastChange: number;
  /** Stamp of the change whose matching subscriptions are being gathered for `gathering`. */
  gatherStamp: number;
  /** False while every change needs the target's own decision. */
  readonly simple: boolean;
  /** The tenant whose index holds the target's subscriptions; null: every tenant (security off). */
  readonly scope: string | null;
  /** What the target may read; null without security. */
  readonly permissions: PermissionSet | null;
  /** Collects the subscriptions that match the change being gathered. */
  readonly gathering: SubscriptionGatherer;
  /** One change's message, in the group of batch `batch` (source transaction `seq`). */
  enqueue(wire: string, bytes: number, batch: number, seq: number): void;
  /** The gathered change, decided by the target itself. */
  deliverGathered(change: TopicChange, segments: readonly string[], ctx: ChangeContext): void;
  /** Delivering threw: the target alone is closed (1011) and logged; fan-out goes on. */
  deliveryFailed(err: unknown, path: string): void;
}

export interface SubscriptionGatherer {
  /** The first subscription of the target matching the current change. */
  begin(sub: Subscription): void;
  /** Another one matching the same change. */
  gather(sub: Subscription): void;
}

export interface Subscription {
  readonly id: string;
  readonly selector: Selector;
  readonly target: DeliveryTarget;
  /** Only topics whose (projected) value matches; null or absent: every topic the selector matches. */
  readonly filter?: Filter | null;
  /** Updates per second per topic; 0 or absent: every update as it happens. */
  readonly maxRate?: number;
  /** The selectors fan-out indexed it under (its intersections with the target's grants); set by FanOut.add. */
  indexed?: readonly Selector[];
}

/** What a session's delivery needs to know about the change being delivered. */
export interface ChangeContext {
  /** The change delivered before this one for the same topic (tenants with sessions only). */
  readonly previous: TopicChange | undefined;
  /** Fan-out's count of batches delivered: the session queue's group for this change. */
  readonly batch: number;
  /** Sequence number of the batch (source transaction) being delivered. */
  readonly seq: number;
  /** The change as seen through projection `p` by a client that holds the topic before and after it; null when it shows nothing. */
  projectedChange(p: Projection): string | null;
  /** The topic's value after the change, through `p`, for a client that did not hold it before. */
  enterValue(p: Projection): string;
}

export class FanOut implements DeliveryContext, ChangeContext {
  /** Subscriptions of sessions without security: they match topics of every tenant. */
  readonly index = new SelectorIndex<Subscription>();
  private readonly tenants = new Map<string, SelectorIndex<Subscription>>();
  /** The last change fan-out delivered per topic of a tenant with sessions (see PermissionSet). */
  private readonly history = new WeakMap<Topic, TopicChange>();
  readonly owner = this;
  batch = 0;
  seq = 0;
  /** The last batch delivered said more of its transaction follows (ChangeBatch.continues): the next one joins its group. */
  private _continuing = false;

  /** True between a batch that says more of its source transaction follows and the one that ends it. */
  get continuing(): boolean {
    return this._continuing;
  }
  previous: TopicChange | undefined = undefined;
  /** Sessions whose subscriptions were gathered for the current change. */
  private readonly gathered: DeliveryTarget[] = [];
  /** Renderings of the current change per projection, shared by the gathered sessions. */
  private readonly both = new Map<Projection, string | null>();
  private readonly enter = new Map<Projection, string>();
  /** Grows by one per change; a session remembers the last stamp it was given. */
  private stamp = 0;
  private change: TopicChange | null = null;
  private segments: readonly string[] = [];
  private bytes = -1;
  // Bound once, so matching allocates no closure per change.
  private readonly visit = (sub: Subscription): void => {
    const session = sub.target;
    try {
      if (session.lastChange === this.stamp) {
        if (session.gatherStamp === this.stamp) session.gathering.gather(sub);
        return;
      }
      session.lastChange = this.stamp;
      if (session.simple === false) {
        this.gather(session, sub);
        return;
      }
      const change = this.change!;
      const permissions = session.permissions;
      if (permissions) {
        const wire = permissions.prepare(change, this.segments, this);
        if (wire === null) return;
        if (wire !== change.wire) {
          session.enqueue(wire, permissions.bytes, this.batch, this.seq);
          return;
        }
      }
      if (this.bytes < 0) this.bytes = Buffer.byteLength(change.wire);
      session.enqueue(change.wire, this.bytes, this.batch, this.seq);
    } catch (err) {
      // A bug while serving this one session (issue #11): it alone is closed (1011, logged); the
      // walk goes on to the other sessions, and the batch never fails the hand-off or ingest.
      session.deliveryFailed(err, this.change!.topic.path);
    }
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
    const { scope, permissions } = sub.target;
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
    const scope = sub.target.scope;
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
    if (!this._continuing) this.batch++;
    this._continuing = batch.continues === true;
    if (this.index.size === 0 && this.tenants.size === 0) return;
    this.seq = batch.seq;
    try {
      this.deliverChanges(batch);
    } finally {
      this.change = null;
      this.previous = undefined;
      this.segments = [];
      this.gathered.length = 0;
    }
  }

  private deliverChanges(batch: ChangeBatch): void {
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
      if (this.gathered.length > 0) this.deliverGathered(change);
    }
  }

  /** The session needs a decision of its own for this change: collect its matching subscriptions first. */
  private gather(session: DeliveryTarget, sub: Subscription): void {
    session.gatherStamp = this.stamp;
    session.gathering.begin(sub);
    this.gathered.push(session);
  }

  private deliverGathered(change: TopicChange): void {
    const sessions = this.gathered;
    // Each session isolates its own failure (Session.deliverGathered closes it with 1011).
    for (let i = 0; i < sessions.length; i++) sessions[i].deliverGathered(change, this.segments, this);
    sessions.length = 0;
    if (this.both.size > 0) this.both.clear();
    if (this.enter.size > 0) this.enter.clear();
  }

  projectedChange(p: Projection): string | null {
    const change = this.change!;
    if (p.all) return change.wire;
    let wire = this.both.get(p);
    if (wire === undefined) this.both.set(p, (wire = projectedChange(change, p, this.previous)));
    return wire;
  }

  enterValue(p: Projection): string {
    const change = this.change!;
    let wire = this.enter.get(p);
    if (wire === undefined) {
      const topic = change.topic;
      if (p.all && change.type === 'value') wire = change.wire;
      else wire = valueMessage(topic.path, change.version, p.all ? change.after! : p.value(change.after!));
      this.enter.set(p, wire);
    }
    return wire;
  }
}

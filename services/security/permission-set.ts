/**
 * What one group of sessions may read: a tenant and a set of grants (claims already
 * substituted), compiled into a SelectorIndex so the check for one topic path is one walk of its
 * segments, whatever the number of grants. Every session with the same tenant and the same
 * effective grants shares one PermissionSet (interned by `key`), and the projected wire text of
 * a change is computed once per PermissionSet, not once per session.
 *
 * Field projection and versions: a delta that touches only hidden fields is not sent, so a
 * restricted session holds some earlier version whose projection equals the current one. The
 * next visible delta can be sent as a delta only when every session of the group holds exactly
 * `version - 1`: that is when the previous change was visible to the group, or when nobody was
 * subscribed during it (then every holder subscribed after it). Otherwise the group gets the
 * projected value, which replaces whatever version a client holds. So clients keep the protocol's
 * strict rule (apply a delta only to `version - 1`) and never see a gap.
 */
import { SelectorIndex } from '../../core/selector-index.ts';
import type { Selector } from '../../core/selector.ts';
import type { Topic, TopicChange, TopicView } from '../../core/topic.ts';
import type { Projection } from './field-projection.ts';
import { projectedValueMessage, seeChange } from './projected-change.ts';
import type { Grant } from './grant-pattern.ts';
import { covers, intersect } from './selector-algebra.ts';

/** What fan-out knows about the change being delivered. */
export interface DeliveryContext {
  /** The fan-out delivering (a PermissionSet may be shared by several servers). */
  readonly owner: object;
  /** Grows by one per delivered batch. */
  readonly batch: number;
  /** The change delivered before this one for the same topic, if fan-out saw it. */
  readonly previous: TopicChange | undefined;
}

/** How much of a selector the grants let a session see, for the audit log. */
export type Coverage = 'all' | 'part' | 'none';

export class PermissionSet {
  /** UTF-8 bytes of the projected text prepare() last returned (not set when it returned the change's own wire). */
  bytes = 0;
  private readonly index = new SelectorIndex<Grant>();
  private found: Projection | null = null;
  private readonly visitGrant = (g: Grant): void => {
    this.found = this.found === null ? g.projection : this.found.union(g.projection);
  };
  private cacheOwner: object | null = null;
  private cacheChange: TopicChange | null = null;
  private cacheResult: string | null = null;
  /** Topics sent ahead (a later version of the same batch) to this group: skip their older changes. */
  private jumps: Map<Topic, number> | null = null;
  private jumpOwner: object | null = null;
  private jumpBatch = -1;

  constructor(
    /** Interning key: tenant, admin flag and the effective grants. */
    readonly key: string,
    readonly tenant: string,
    readonly admin: boolean,
    readonly grants: readonly Grant[],
  ) {
    for (const g of grants) this.index.add(g.selector, g);
  }

  /** The fields visible at this path (of this tenant), or null when the path may not be read. */
  access(segments: readonly string[]): Projection | null {
    this.found = null;
    this.index.match(segments, this.visitGrant);
    const p = this.found;
    this.found = null;
    return p;
  }

  /** As access(), for a topic: null for a topic of another tenant. */
  accessTopic(topic: Topic): Projection | null {
    return topic.tenant === this.tenant ? this.access(topic.path.split('/')) : null;
  }

  /** The `value` message for a readable topic, projected; null when the topic may not be read. */
  valueWire(topic: Topic): string | null {
    const p = this.accessTopic(topic);
    return p === null ? null : projectedValueMessage(topic, topic.version, p);
  }

  /**
   * Visits every readable topic the selector matches, with its projected `value` message. Walks
   * only the selector's intersections with the grants, never the rest of the tree.
   */
  forEachReadable(view: TopicView, selector: Selector, visit: (topic: Topic, wire: string) => void): void {
    const parts = this.reach(selector);
    if (parts.length === 0) return;
    const seen = parts.length > 1 ? new Set<string>() : null;
    const each = (topic: Topic): void => {
      if (topic.tenant !== this.tenant) return;
      if (seen) {
        if (seen.has(topic.path)) return;
        seen.add(topic.path);
      }
      const p = this.access(topic.path.split('/'));
      if (p !== null) visit(topic, projectedValueMessage(topic, topic.version, p));
    };
    for (const s of parts) view.forEachMatching(s, each);
  }

  /**
   * The parts of the selector the grants reach: the selector itself when one grant covers it,
   * none when no grant meets it. Fan-out indexes a subscription under these, so a session is
   * never even visited for a change it may not read.
   */
  reach(selector: Selector): Selector[] {
    const parts = new Map<string, Selector>();
    for (const g of this.grants) {
      if (covers(g.selector, selector)) return [selector];
      const x = intersect(g.selector, selector);
      if (x) parts.set(x.text, x);
    }
    return [...parts.values()];
  }

  coverage(selector: Selector): Coverage {
    let some = false;
    for (const g of this.grants) {
      if (covers(g.selector, selector)) return 'all';
      some ||= intersect(g.selector, selector) !== null;
    }
    return some ? 'part' : 'none';
  }

  /**
   * What this group gets for one change: null (nothing), the change's own `wire` (every field
   * visible), or a projected text whose UTF-8 size is then in `bytes`. Cached per change: the
   * first session of the group pays, the others reuse. O(path segments) for the check, plus the
   * projection when a field rule applies.
   */
  prepare(change: TopicChange, segments: readonly string[], ctx: DeliveryContext): string | null {
    if (this.cacheChange === change && this.cacheOwner === ctx.owner) return this.cacheResult;
    this.cacheOwner = ctx.owner;
    this.cacheChange = change;
    const result = this.decide(change, segments, ctx);
    this.cacheResult = result;
    if (result !== null && result !== change.wire) this.bytes = Buffer.byteLength(result);
    return result;
  }

  private decide(change: TopicChange, segments: readonly string[], ctx: DeliveryContext): string | null {
    const topic = change.topic;
    if (topic.tenant !== this.tenant) return null;
    const p = this.access(segments);
    if (p === null) return null;
    if (p.all) return change.wire;
    if (this.jumps !== null && this.jumpOwner === ctx.owner && this.jumpBatch === ctx.batch) {
      const ahead = this.jumps.get(topic);
      if (ahead !== undefined && change.version <= ahead) return null;
    }
    const seen = seeChange(change, p, ctx.previous);
    return seen !== undefined ? seen : this.projectValue(topic, change.version, p, ctx);
  }

  /** The projected value at `version`; when the batch changes the topic again, the batch's last value (and its later changes are skipped). */
  private projectValue(topic: Topic, version: number, p: Projection, ctx: DeliveryContext): string {
    if (topic.version !== version) {
      if (this.jumpOwner !== ctx.owner || this.jumpBatch !== ctx.batch || this.jumps === null) {
        this.jumps = new Map();
        this.jumpOwner = ctx.owner;
        this.jumpBatch = ctx.batch;
      }
      this.jumps.set(topic, topic.version);
    }
    return projectedValueMessage(topic, topic.version, p);
  }
}


/**
 * How one session's topic updates reach its socket, beyond the fast path: filters (a topic
 * entering a subscription arrives as a value, one leaving as a removal), throttles (at most
 * `maxRate` updates per second per topic, the latest always last), and slow clients (updates of a
 * client that falls behind are merged per topic instead of queued, so it gets the current state
 * once it reads again, in one group).
 *
 * State is kept only where it is needed: a PendingTopics entry for a topic whose client is not
 * simply one change behind the server (throttled, behind, or holding an older version). A session
 * with none of that is `simple`, and fan-out's fast path serves it without visiting this class.
 */
import { jsonEqual } from '../../core/json.ts';
import { Projection } from '../security/field-projection.ts';
import type { PermissionSet } from '../security/permission-set.ts';
import { diffValues } from '../../core/delta.ts';
import { removalMessage, updateText } from '../../core/wire.ts';
import type { Filter } from '../../core/filter.ts';
import { matchesSegments } from '../../core/selector.ts';
import type { Topic, TopicChange, TopicView } from '../../core/topic.ts';
import { heldPrevious } from '../security/projected-change.ts';
import type { ChangeContext } from './fan-out.ts';
import { type PendingTopic, PendingTopics, TICK_MS } from './pending-topics.ts';
import type { Subscription } from './fan-out.ts';
import type { DistributionStats } from './stats.ts';

/** What to do with a client whose socket backlog passes `slowClientBytes`. */
export type SlowClientPolicy = 'conflate' | 'disconnect';

export interface DeliveryOptions {
  readonly slowClientPolicy: SlowClientPolicy;
  /** Socket backlog (bytes) above which a client counts as behind. */
  readonly slowClientBytes: number;
  /** `disconnect`: how long a client may stay behind before it is closed with 4008. */
  readonly slowClientGraceMs: number;
  /** Most topics whose updates one session may have merged or throttled at once; past it: 4008. */
  readonly maxConflatedTopics: number;
}

/** What the delivery needs from its session. */
export interface DeliveryPort {
  readonly view: TopicView;
  readonly stats: DistributionStats;
  permissions(): PermissionSet | null;
  subscriptions(): Iterable<Subscription>;
  /** Bytes the socket has not written yet. */
  backlog(): number;
  /** Bytes queued and not yet handed to the socket. */
  queuedBytes(): number;
  /** Queues a change's message during fan-out, in the group of the batch `ctx` delivers. */
  enqueue(wire: string, ctx: ChangeContext): void;
  /** Queues a topic message in the group opened by group() (merged and throttled updates at a flush). */
  push(wire: string): void;
  /** Starts a group of messages that must arrive together. */
  group(seq: number): void;
  /** Asks for a flush round. */
  requestFlush(): void;
  /** The client cannot be served within its limits: close it (4008). */
  overflow(why: string): void;
  /** Whether fan-out's fast path may serve the session changed. */
  simple(simple: boolean): void;
  /** A timer of the delivery threw (a bug): the session alone is closed (1011) and logged. */
  failed(err: unknown): void;
}

/** Most merged or throttled entries settled() looks through. */
const SETTLED_SCAN = 4096;

/** How often a client that fell behind is checked for having read its backlog. */
const POLL_MS = 20;

/**
 * Longest delay handed to setTimeout: Node turns anything above 2^31-1 ms into 1 ms (with a
 * TimeoutOverflowWarning on stderr), so a longer wait would fire, re-arm and warn once a
 * millisecond (issue #13). Longer waits are cut into pieces of this size and re-armed.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay setTimeout keeps as given: not negative, at most MAX_TIMER_MS. */
export function timerDelay(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms > 0 ? ms : 0;
}

const NOT_MATCHED = 0;
const FILTERED_OUT = 1;
const WANTED = 2;

export class SessionDelivery {
  /**
   * True when fan-out's fast path may deliver for this session (every update is sent as it
   * happens): no filter, no throttle, not behind, nothing merged. Kept up to date by update(),
   * which tells the session (fan-out reads the session's copy).
   */
  simple = true;
  /** The client's socket backlog passed slowClientBytes: its updates are merged until it reads. */
  behind = false;
  readonly pending = new PendingTopics();
  /** Live subscriptions with a filter / with a maxRate. */
  private filtered = 0;
  private throttled = 0;
  private readonly conflate: boolean;
  private slowSince = 0;
  private graceTimer: NodeJS.Timeout | null = null;
  private throttleTimer: NodeJS.Timeout | null = null;
  private throttleAt = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private disposed = false;
  // The subscriptions fan-out gathered for the change being delivered.
  private plain = false;
  private readonly filters: Filter[] = [];
  private rate = 0;
  // Written by wantsNow().
  private wantedRate = 0;

  constructor(
    private readonly port: DeliveryPort,
    private readonly options: DeliveryOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.conflate = options.slowClientPolicy === 'conflate';
  }

  /** A subscription of the session started (+1) or ended (-1). */
  count(sub: Subscription, delta: 1 | -1): void {
    if (sub.filter) this.filtered += delta;
    if (sub.maxRate) this.throttled += delta;
    this.update();
  }

  private update(): void {
    const simple = this.filtered === 0 && this.throttled === 0 && !this.behind && this.pending.size === 0;
    if (simple !== this.simple) this.port.simple((this.simple = simple));
  }

  /** Fan-out: the first subscription of this session matching the change. */
  begin(sub: Subscription): void {
    this.plain = false;
    this.filters.length = 0;
    this.rate = 0;
    this.gather(sub);
  }

  /** Fan-out: another subscription of this session matching the same change. */
  gather(sub: Subscription): void {
    const filter = sub.filter;
    if (filter == null) this.plain = true;
    else if (!this.filters.includes(filter)) this.filters.push(filter);
    const rate = sub.maxRate ? sub.maxRate : Infinity;
    if (rate > this.rate) this.rate = rate;
  }

  /** Fan-out: every matching subscription was gathered; decide what the client gets. */
  deliver(change: TopicChange, segments: readonly string[], ctx: ChangeContext): void {
    if (this.disposed) return;
    const permissions = this.port.permissions();
    let p = Projection.ALL;
    if (permissions) {
      if (change.topic.tenant !== permissions.tenant) return;
      const access = permissions.access(segments);
      if (access === null) return;
      p = access;
    }
    const before = change.before !== null && this.wants(change.before, p);
    const after = change.after !== null && this.wants(change.after, p);
    if (!before && !after) return;
    const path = change.topic.path;
    let entry = this.pending.get(path);
    if (entry === undefined && !this.behind) {
      const wire = !after
        ? change.type === 'removal' ? change.wire : removalMessage(path, change.version, 'filter')
        : !before ? ctx.enterValue(p) : ctx.projectedChange(p);
      if (wire === null) return;
      this.port.enqueue(wire, ctx);
      if (after && this.rate !== Infinity) {
        // A throttled topic was just sent: its next update waits for the end of the interval.
        const interval = 1000 / this.rate;
        if (this.add(newEntry(path, true, change.version, change.after, change.version, interval, this.now() + interval))) this.armThrottle();
      }
      return;
    }
    if (entry === undefined) {
      const exact = heldPrevious(change.version, p, ctx.previous);
      const interval = this.rate === Infinity ? 0 : 1000 / this.rate;
      entry = newEntry(path, before, before ? (exact ? change.version - 1 : -1) : 0, before ? change.before : null, change.version, interval, 0);
      if (!this.add(entry)) return;
    }
    entry.version = change.version;
    // A subscription without maxRate wants this topic now: its throttle window no longer applies.
    if (this.rate === Infinity && entry.until > 0) entry.until = 0;
    if (this.pending.touch(entry, this.now())) this.port.stats.conflations++;
    if (entry.state === 'ready') {
      if (!this.behind) this.port.requestFlush();
    } else {
      this.armThrottle();
    }
  }

  /**
   * The session sent the client a topic outside fan-out (a subscription's answer, a permission
   * change): `held` is what the client holds now (null: nothing).
   */
  sent(path: string, held: { readonly version: number; readonly value: Topic['value'] } | null): void {
    const e = this.pending.get(path);
    if (!e) return;
    e.held = held !== null;
    e.heldVersion = held ? held.version : 0;
    e.heldValue = held ? held.value : null;
    if (e.state === 'ready') e.state = 'settled';
  }

  /**
   * A client holding `version` of a topic whose projection equals the current one (a resume that
   * had nothing visible to send): remember it, so the next update is built on what it holds.
   */
  holds(topic: Topic, version: number): void {
    let e = this.pending.get(topic.path);
    if (!e) {
      this.add(newEntry(topic.path, true, version, topic.value, topic.version, 0, 0));
    } else {
      e.held = true;
      e.heldVersion = version;
      e.heldValue = topic.value;
    }
  }

  /**
   * Flush round: may the queue go to the socket now? Not while the client is behind (conflate
   * policy): its updates keep merging until it has read its backlog down.
   */
  gate(): boolean {
    if (!this.conflate) return true;
    const backlog = this.port.backlog();
    if (this.behind) {
      if (backlog > this.options.slowClientBytes / 2) {
        this.poll();
        return false;
      }
      this.behind = false;
      this.update();
      return true;
    }
    if (backlog > this.options.slowClientBytes) {
      this.behind = true;
      this.update();
      this.port.stats.slowClients++;
      this.poll();
      return false;
    }
    return true;
  }

  /** Flush round: renders every entry with an update due into the queue, as one group. */
  release(): void {
    if (this.pending.readyCount === 0) return;
    const ready = this.pending.takeReady();
    if (ready.length === 0) return;
    this.port.group(this.port.view.position);
    const now = this.now();
    for (const e of ready) this.render(e, now);
  }

  /** After a flush round (disconnect policy): a client over slowClientBytes for slowClientGraceMs is closed. */
  afterFlush(): void {
    if (this.conflate) return;
    const over = this.port.backlog() + this.port.queuedBytes() > this.options.slowClientBytes;
    if (!over) {
      this.slowSince = 0;
      return;
    }
    const now = this.now();
    if (this.slowSince === 0) {
      this.slowSince = now;
      this.port.stats.slowClients++;
    } else if (now - this.slowSince >= this.options.slowClientGraceMs) {
      this.port.overflow(`behind by more than ${this.options.slowClientBytes} bytes for ${this.options.slowClientGraceMs} ms: read faster or subscribe to less`);
      return;
    }
    // Checked again at the end of the grace period even if nothing else is sent by then.
    if (this.graceTimer === null) {
      // Fires early (and afterFlush() arms it again) when the grace period is longer than a timer can wait.
      this.graceTimer = setTimeout(() => {
        this.graceTimer = null;
        if (!this.disposed) this.guarded(() => this.afterFlush());
      }, timerDelay(this.slowSince + this.options.slowClientGraceMs - now + 1));
      this.graceTimer.unref();
    }
  }

  /** A subscription ended: the client dropped the topics no other subscription holds. */
  unsubscribed(): void {
    if (this.pending.size === 0) return;
    const permissions = this.port.permissions();
    for (const e of [...this.pending.values()]) {
      if (!e.held || e.heldValue === null) continue;
      const p = permissions ? permissions.access(e.path.split('/')) : Projection.ALL;
      if (p !== null && this.wantsNow(e.path.split('/'), e.heldValue, p) === WANTED) continue;
      e.held = false;
      e.heldVersion = 0;
      e.heldValue = null;
      if (e.state === 'settled' && e.until === 0) this.forget(e);
    }
  }

  /**
   * True when, once what is queued is sent, the client holds every topic of its subscriptions at
   * its current version: not behind, no merged or throttled update waiting, no topic held at an
   * older version. Only then may the session announce a position (docs/PROTOCOL.md, "Resuming"):
   * a position never passes a change that was merged and not yet sent. Sessions with more than
   * `SETTLED_SCAN` entries are not checked (and announce no position while they have them).
   */
  settled(): boolean {
    if (this.behind || this.pending.readyCount > 0) return false;
    const n = this.pending.size;
    if (n === 0) return true;
    if (n > SETTLED_SCAN) return false;
    const view = this.port.view;
    for (const e of this.pending.values()) {
      if (e.state !== 'settled') return false;
      if (e.held && e.heldVersion !== view.get(e.path)?.version) return false;
    }
    return true;
  }

  /** The client holds the topic at `path` (as far as merged and throttled topics tell): undefined when there is no entry. */
  heldFor(path: string): boolean | undefined {
    return this.pending.get(path)?.held;
  }

  dispose(): void {
    this.disposed = true;
    for (const t of [this.throttleTimer, this.pollTimer, this.graceTimer]) if (t) clearTimeout(t);
    this.throttleTimer = null;
    this.pollTimer = null;
    this.graceTimer = null;
    this.pending.clear();
  }

  /** Registers an entry; false (and the session is closed with 4008) past maxConflatedTopics. */
  private add(e: PendingTopic): boolean {
    this.pending.add(e);
    this.update();
    if (this.pending.size <= this.options.maxConflatedTopics) return true;
    this.port.overflow(`more than ${this.options.maxConflatedTopics} topics waiting to be sent: read faster or subscribe to less`);
    return false;
  }

  private forget(e: PendingTopic): void {
    this.pending.delete(e);
    if (this.pending.size === 0) this.update();
  }

  private wants(value: Topic['value'], p: Projection): boolean {
    if (this.plain) return true;
    for (const f of this.filters) if (f.test(value, p)) return true;
    return false;
  }

  /**
   * Whether the session's subscriptions want a topic with this value now (and the fastest rate
   * among those that do, in wantedRate): NOT_MATCHED when no selector covers the path.
   */
  private wantsNow(segments: readonly string[], value: Topic['value'], p: Projection): number {
    let result = NOT_MATCHED;
    this.wantedRate = 0;
    for (const sub of this.port.subscriptions()) {
      if (!matchesSegments(sub.selector, segments)) continue;
      if (sub.filter != null && !sub.filter.test(value, p)) {
        if (result === NOT_MATCHED) result = FILTERED_OUT;
        continue;
      }
      result = WANTED;
      const rate = sub.maxRate ? sub.maxRate : Infinity;
      if (rate > this.wantedRate) this.wantedRate = rate;
    }
    return result;
  }

  /** Sends what the client needs to go from what the entry says it holds to the current state. */
  private render(e: PendingTopic, now: number): void {
    const segments = e.path.split('/');
    const topic = this.port.view.get(e.path);
    const permissions = this.port.permissions();
    let p: Projection | null = Projection.ALL;
    if (topic && permissions) p = topic.tenant === permissions.tenant ? permissions.access(segments) : null;
    const verdict = topic && p !== null ? this.wantsNow(segments, topic.value, p) : this.matchesAny(segments);
    if (!topic || p === null || verdict !== WANTED) {
      if (e.held && verdict !== NOT_MATCHED) {
        if (!topic) this.port.push(removalMessage(e.path, e.version));
        else if (p === null) this.port.push(removalMessage(e.path, topic.version + 1, topic.tenant === permissions?.tenant ? 'access' : undefined));
        else this.port.push(removalMessage(e.path, topic.version, 'filter'));
      }
      this.forget(e);
      return;
    }
    let sent = false;
    if (!(e.held && e.heldVersion === topic.version)) {
      const current = p.value(topic.value);
      const held = e.held && e.heldValue !== null ? p.value(e.heldValue) : null;
      if (held !== null && jsonEqual(held, current)) {
        e.heldValue = topic.value; // same projection: an update would show nothing
      } else {
        this.port.push(updateMessage(e.path, topic.version, current, held, e.heldVersion));
        e.held = true;
        e.heldVersion = topic.version;
        e.heldValue = topic.value;
        sent = true;
      }
    }
    const interval = this.wantedRate === Infinity ? 0 : 1000 / this.wantedRate;
    e.interval = interval;
    e.state = 'settled';
    if (sent && interval > 0) {
      this.pending.hold(e, now + interval);
      this.armThrottle();
    } else if (e.heldVersion === topic.version && !(e.until > now)) {
      this.forget(e);
    }
  }

  private matchesAny(segments: readonly string[]): number {
    for (const sub of this.port.subscriptions()) if (matchesSegments(sub.selector, segments)) return FILTERED_OUT;
    return NOT_MATCHED;
  }

  /**
   * Keeps one timer for the earliest throttle window that ends. A window longer than a timer can
   * wait (MAX_TIMER_MS) is waited for in pieces: the timer fires with nothing due and tick() arms
   * it again for the rest.
   */
  private armThrottle(): void {
    const due = this.pending.nextDue();
    if (due === 0 || this.disposed) return;
    if (this.throttleTimer !== null && this.throttleAt <= due) return;
    if (this.throttleTimer !== null) clearTimeout(this.throttleTimer);
    this.throttleAt = due;
    this.throttleTimer = setTimeout(() => this.guarded(() => this.tick()), timerDelay(due - this.now()));
    this.throttleTimer.unref();
  }

  private tick(): void {
    this.throttleTimer = null;
    if (this.disposed) return;
    const now = this.now();
    const moved = this.pending.due(now + TICK_MS / 2, (e) => this.expire(e));
    if (moved && !this.behind) this.port.requestFlush();
    this.armThrottle();
  }

  /** A throttle window ended with nothing to send: forget the entry unless the client holds an older version. */
  private expire(e: PendingTopic): void {
    e.until = 0;
    const topic = this.port.view.get(e.path);
    if (!e.held || (topic !== undefined && e.heldVersion === topic.version)) this.forget(e);
  }

  private poll(): void {
    if (this.pollTimer !== null || this.disposed) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      if (this.disposed || !this.behind) return;
      this.guarded(() => {
        if (this.port.backlog() <= this.options.slowClientBytes / 2) this.port.requestFlush();
        else this.poll();
      });
    }, POLL_MS);
    this.pollTimer.unref();
  }

  /** Runs a timer's work: a throw there would escape to the process, so it ends this session instead (issue #11). */
  private guarded(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.port.failed(err);
    }
  }
}

function newEntry(
  path: string, held: boolean, heldVersion: number, heldValue: Topic['value'] | null, version: number, interval: number, until: number,
): PendingTopic {
  return { path, held, heldVersion, heldValue, version, state: 'settled', until, interval, bucket: 0 };
}

/** A delta from the held version when it is known and the patch is smaller than the value; else the value. */
function updateMessage(path: string, version: number, current: Topic['value'], held: Topic['value'] | null, heldVersion: number): string {
  const patch = held !== null && heldVersion > 0 ? JSON.stringify(diffValues(held, current)) : null;
  return updateText(path, version, JSON.stringify(current), patch, heldVersion);
}

/**
 * The answer to a `subscribe`: the current value of every topic the selector and filter match
 * that the session may read, projected onto its fields; or, with `resume` in the same epoch, only
 * what changed since the versions the client holds: nothing for a topic at the same version, one
 * delta (its history's patches composed, with `base`) where the history reaches and the delta is
 * smaller than the value, the value otherwise, and a removal for a listed topic that is gone, no
 * longer readable (indistinguishable from gone) or no longer matching the filter.
 *
 * Synchronous on purpose: the hand-off delivers batches on this same event loop, so no change can
 * fall between reading the state here and the subscription going live. An answer larger than a
 * page sends its first page here and leaves the rest to AnswerPages, one page each time the
 * client's socket has drained (session.ts).
 */
import { createHash } from 'node:crypto';
import { Projection } from '../security/field-projection.ts';
import type { PermissionSet } from '../security/permission-set.ts';
import { projectedValueMessage } from '../security/projected-change.ts';
import type { PatchOp } from '../../core/delta.ts';
import type { Filter } from '../../core/filter.ts';
import { composePatches } from '../../core/patch-compose.ts';
import { type Selector, matchesSegments } from '../../core/selector.ts';
import { type Topic, type TopicView, valueJsonOf } from '../../core/topic.ts';
import { removalMessage, updateText } from '../../core/wire.ts';
import type { ResumeKind, ResumeState } from '../../core/messages.ts';

export interface AnswerRequest {
  readonly view: TopicView;
  readonly permissions: PermissionSet | null;
  readonly selector: Selector;
  readonly filter: Filter | null;
  readonly resume: ResumeState | undefined;
  /**
   * Characters of messages the first page may hold; the topics past it are left for later pages
   * (`Answer.rest`). Absent: no limit, the whole answer at once.
   */
  readonly pageChars?: number;
}

export interface AnswerSink {
  /** Queues one message of the answer. */
  send(wire: string): void;
  /**
   * The client holds `held` of the topic at `path` once the answer arrives (null: nothing). `held`
   * may be the topic itself: read its fields during the call only, and only when needed (a topic
   * read from the store decodes its value when it is first read).
   */
  sent(path: string, held: { readonly version: number; readonly value: Topic['value'] } | null): void;
  /** The client keeps `version` of the topic, whose projection did not change since. */
  holds(topic: Topic, version: number): void;
}

export interface Answer {
  /** Topics the answer sent so far (all of them unless `rest`). */
  readonly topics: number;
  /** How a resume was answered so far; undefined without one. */
  readonly resumed: ResumeKind | undefined;
  /** The topics left for later pages; absent when the answer is complete. */
  readonly rest?: AnswerPages;
}

/**
 * Writes the answer for one topic at a time, and keeps the tally: how many topics were sent, the
 * characters queued for the current page, whether some resumed topic had to be sent whole.
 */
class AnswerWriter {
  topics = 0;
  partial = false;
  chars = 0;

  constructor(
    private readonly view: TopicView,
    private readonly filter: Filter | null,
    readonly versions: Readonly<Record<string, number>> | null,
    private readonly sink: AnswerSink,
    /**
     * Resuming from a position (`resume.seq`): the client holds the state after this batch for
     * every topic not listed in `versions`. Null: no position (or it cannot be answered from).
     */
    readonly since: number | null = null,
  ) {}

  send(wire: string): void {
    this.chars += wire.length;
    this.sink.send(wire);
  }

  /** The topic as this subscription answers it; false when the filter does not match (nothing sent). */
  visit(topic: Topic, p: Projection): boolean {
    if (this.filter !== null && !this.filter.test(topic.value, p)) {
      this.filterExit(topic);
      return false;
    }
    this.topics++;
    const versions = this.versions;
    let held = versions !== null && Object.hasOwn(versions, topic.path) ? versions[topic.path] : undefined;
    if (held === undefined && this.since !== null) {
      // The client holds what the topic was after batch `since`: nothing to send unless it changed since.
      if (topic.seq !== undefined && topic.seq <= this.since) {
        this.sink.sent(topic.path, topic);
        return true;
      }
      // A delta needs the version it held: known only without a filter (with one, it may not
      // have held the topic at all) and through the whole value (a projected client may hold an
      // older version whose projection was the same).
      const at = this.filter === null && p.all ? (this.view.versionAt?.(topic, this.since) ?? null) : null;
      if (at === null) {
        this.send(projectedValueMessage(topic, topic.version, p));
        this.sink.sent(topic.path, topic);
        return true;
      }
      held = at;
      if (held === topic.version) {
        this.sink.sent(topic.path, topic);
        return true;
      }
      const patches = held < topic.version ? this.view.changesSince(topic, held) : null;
      const ops = patches === null ? null : composePatches(patches);
      if (ops === null || ops.length === 0) this.send(projectedValueMessage(topic, topic.version, p));
      else this.send(updateText(topic.path, topic.version, valueJsonOf(topic), JSON.stringify(ops), held));
      this.sink.sent(topic.path, topic);
      return true;
    }
    if (held === undefined) {
      this.send(projectedValueMessage(topic, topic.version, p));
      this.sink.sent(topic.path, topic);
      return true;
    }
    if (held === topic.version) {
      this.sink.sent(topic.path, topic);
      return true;
    }
    const patches = held < topic.version ? this.view.changesSince(topic, held) : null;
    const ops = patches === null ? null : projectAndCompose(patches, p);
    if (ops === null) {
      // By versions the answer is then partial. From a position it stays exact: `partial` there
      // means whole (the client would drop every held topic not sent), and this one was sent.
      if (this.since === null) this.partial = true;
      this.send(projectedValueMessage(topic, topic.version, p));
      this.sink.sent(topic.path, topic);
    } else if (ops.length === 0) {
      this.sink.holds(topic, held); // nothing it may see changed: it keeps its version
    } else {
      this.send(updateText(topic.path, topic.version, JSON.stringify(p.value(topic.value)), JSON.stringify(ops), held));
      this.sink.sent(topic.path, topic);
    }
    return true;
  }

  /**
   * Resuming from a position: a readable topic the filter does not match now, changed after the
   * position, may have matched then: it gets a removal (`filter`; a client that did not hold it
   * ignores it). Listed topics are answered by removeListed.
   */
  filterExit(topic: Topic): void {
    if (this.since === null || (this.versions !== null && Object.hasOwn(this.versions, topic.path))) return;
    if (topic.seq !== undefined && topic.seq <= this.since) return;
    this.send(removalMessage(topic.path, topic.version, 'filter'));
    this.sink.sent(topic.path, null);
  }

  /** Resuming from a position: a topic the client may hold is gone (or no longer readable). */
  gone(path: string, version: number): void {
    if (this.since === null || (this.versions !== null && Object.hasOwn(this.versions, path))) return;
    this.send(removalMessage(path, version));
    this.sink.sent(path, null);
  }

  /** A topic the client listed is not part of the answer: removed (reason `filter` when it exists and is readable). */
  removeListed(path: string, readable: boolean): void {
    if (this.versions === null || !Object.hasOwn(this.versions, path)) return;
    this.send(removalMessage(path, this.versions[path] + 1, readable ? 'filter' : undefined));
    this.sink.sent(path, null);
  }
}

/**
 * How a resume is answered: from the listed versions, from the position `since` (and the listed
 * versions), or whole (`whole`: every matching topic as its value, resumed "partial"), or fresh
 * (another epoch). Null without a resume.
 */
interface ResumePlan {
  readonly versions: Readonly<Record<string, number>> | null;
  readonly since: number | null;
  readonly whole: boolean;
}

/**
 * The short tag of a session's effective permissions that `position` carries (and `resume.access`
 * brings back): a resume under other permissions than the position's is answered whole.
 */
export function accessTag(permissions: PermissionSet | null): string | undefined {
  if (permissions === null) return undefined;
  let tag = tags.get(permissions);
  if (tag === undefined) tags.set(permissions, (tag = createHash('sha256').update(permissions.key).digest('base64url').slice(0, 16)));
  return tag;
}

/** Permission sets are interned and immutable: one tag each. */
const tags = new WeakMap<PermissionSet, string>();

function planResume(view: TopicView, resume: ResumeState | undefined, permissions: PermissionSet | null): ResumePlan | null {
  if (resume === undefined) return null;
  if (resume.epoch !== view.epoch) return { versions: null, since: null, whole: false };
  const versions = resume.versions ?? null;
  const seq = resume.seq;
  if (seq === undefined) return { versions: versions ?? {}, since: null, whole: false };
  const answerable =
    seq <= view.position &&
    !(view.positionLost?.(seq) ?? false) &&
    resume.access === accessTag(permissions) &&
    view.versionAt !== undefined &&
    view.removalsSince !== undefined &&
    view.removalsSince(seq) !== null;
  // Whole: the versions are not used either (the client drops what is not sent).
  return answerable ? { versions, since: seq, whole: false } : { versions: null, since: null, whole: true };
}

export function answerSubscribe(req: AnswerRequest, sink: AnswerSink): Answer {
  const { view, resume } = req;
  const plan = planResume(view, resume, req.permissions);
  const versions = plan?.versions ?? null;
  const since = plan?.since ?? null;
  const writer = new AnswerWriter(view, req.filter, versions, sink, since);
  if (plan?.whole) writer.partial = true;
  const seen = versions ? new Set<string>() : null;
  const pageChars = req.pageChars ?? Infinity;
  // Past the first page, the matching paths are only remembered, in walk order: their values go
  // out in later pages, read when each page is written (see AnswerPages).
  let later: Set<string> | null = null;

  forEachReadable(req, (topic, p) => {
    if (later !== null || writer.chars >= pageChars) {
      if (req.filter !== null && !req.filter.test(topic.value, p)) {
        writer.filterExit(topic);
        return;
      }
      (later ??= new Set()).add(topic.path);
      seen?.add(topic.path);
      return;
    }
    if (writer.visit(topic, p)) seen?.add(topic.path);
  });

  if (versions !== null) {
    for (const path of Object.keys(versions)) {
      if (seen!.has(path)) continue;
      const segments = path.split('/');
      if (!matchesSegments(req.selector, segments)) continue;
      const topic = view.get(path);
      // A topic the session may not read is answered exactly like a missing one.
      writer.removeListed(path, topic !== undefined && readableProjection(req.permissions, topic, path, segments) !== null);
    }
  }
  if (since !== null) {
    // Removed after the position: the ones this session could read (a removed topic of another
    // tenant, or beyond the grants, is never named). One removal per path, at its last version.
    const removed = new Map<string, number>();
    for (const r of view.removalsSince!(since) ?? []) {
      if (view.get(r.path) !== undefined) continue;
      const segments = r.path.split('/');
      if (!matchesSegments(req.selector, segments)) continue;
      const permissions = req.permissions;
      if (permissions !== null && (r.tenant !== permissions.tenant || permissions.access(segments) === null)) continue;
      removed.set(r.path, r.version);
    }
    for (const [path, version] of removed) writer.gone(path, version);
  }
  const answer: Answer = { topics: writer.topics, resumed: resumeKind(resume, plan, writer.partial) };
  if (later === null) return answer;
  const waiting: Set<string> = later;
  return { ...answer, rest: new AnswerPages(writer, waiting, writer.topics + waiting.size, plan) };
}

function resumeKind(resume: ResumeState | undefined, plan: ResumePlan | null, partial: boolean): ResumeKind | undefined {
  if (resume === undefined || plan === null) return undefined;
  if (plan.versions === null && plan.since === null && !plan.whole) return 'fresh';
  return partial ? 'partial' : 'exact';
}

/**
 * The rest of an answer too large for one page (issue #12, item 6): the paths that matched when
 * the subscribe was answered and were not sent yet, in a fixed order. Each page sends the next
 * of them at their current value (what changed before does not matter: the page carries the
 * result), so the session delivers a live change only for a path already sent (`has` false) and
 * skips it for one still waiting. Once every page is out, the client holds the state as it is
 * then: a state that existed.
 */
export class AnswerPages {
  /**
   * The waiting paths in page order, read from `next` on. (The set answers `has`; iterating it
   * again for each page would cost a scan past every path already deleted: V8 leaves deleted
   * entries in place until the table is rebuilt — 40% of a 1M-topic load's server CPU.)
   */
  private readonly order: string[];
  private cursor = 0;

  constructor(
    private readonly writer: AnswerWriter,
    private readonly waiting: Set<string>,
    /** Topics the answer matched when it started. */
    readonly total: number,
    private readonly plan: ResumePlan | null = null,
  ) {
    this.order = [...waiting];
  }

  /** Topics handled so far (sent, or gone meanwhile). */
  get sent(): number {
    return this.total - this.waiting.size;
  }

  get done(): boolean {
    return this.waiting.size === 0;
  }

  /** True while `path` waits for its page: a change to it is not delivered (its page will carry it). */
  has(path: string): boolean {
    return this.waiting.has(path);
  }

  /** Topics sent by the answer so far. */
  get topics(): number {
    return this.writer.topics;
  }

  resumed(resume: ResumeState | undefined): ResumeKind | undefined {
    return resumeKind(resume, this.plan, this.writer.partial);
  }

  /**
   * Sends the next page through the writer's sink: topics in order until about `pageChars`
   * characters, each at its current value and seen through the session's current permissions.
   */
  next(view: TopicView, permissions: PermissionSet | null, pageChars: number): void {
    const writer = this.writer;
    writer.chars = 0;
    while (this.cursor < this.order.length) {
      const path = this.order[this.cursor++];
      if (!this.waiting.delete(path)) continue;
      const topic = view.get(path);
      const p = topic === undefined ? null : readableProjection(permissions, topic, path);
      if (topic === undefined || p === null || !writer.visit(topic, p)) {
        writer.removeListed(path, topic !== undefined && p !== null);
        // Resuming from a position: gone (or unreadable) while it waited for its page.
        if (topic === undefined || p === null) writer.gone(path, topic === undefined ? (view.removedVersion?.(path) ?? 1) : topic.version + 1);
      }
      if (writer.chars >= pageChars) return;
    }
  }
}

/** The patches seen through `p`, composed; null when one of them cannot be projected (the value must be sent). */
function projectAndCompose(patches: ReadonlyArray<readonly PatchOp[]>, p: Projection): PatchOp[] | null {
  if (p.all) return composePatches(patches);
  const visible: Array<readonly PatchOp[]> = [];
  for (const patch of patches) {
    const ops = p.patch(patch);
    if (ops === null) return null;
    if (ops.length > 0) visible.push(ops);
  }
  return visible.length === 0 ? [] : composePatches(visible);
}

/** `segments`: the path's, when the caller has them; split only when permissions need them (not per page topic without security). */
function readableProjection(permissions: PermissionSet | null, topic: Topic, path: string, segments?: readonly string[]): Projection | null {
  if (permissions === null) return Projection.ALL;
  return topic.tenant === permissions.tenant ? permissions.access(segments ?? path.split('/')) : null;
}

/**
 * Every topic the selector matches that the session may read, with its projection. With
 * permissions, walks only the selector's intersections with the grants.
 */
export function forEachReadable(req: Pick<AnswerRequest, 'view' | 'permissions' | 'selector'>, visit: (topic: Topic, p: Projection) => void): void {
  const { view, permissions, selector } = req;
  if (permissions === null) {
    view.forEachMatching(selector, (topic) => visit(topic, Projection.ALL));
    return;
  }
  const parts = permissions.reach(selector);
  const seen = parts.length > 1 ? new Set<string>() : null;
  for (const part of parts) {
    view.forEachMatching(part, (topic) => {
      if (topic.tenant !== permissions.tenant) return;
      if (seen) {
        if (seen.has(topic.path)) return;
        seen.add(topic.path);
      }
      const p = permissions.access(topic.path.split('/'));
      if (p !== null) visit(topic, p);
    });
  }
}

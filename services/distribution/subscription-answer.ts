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
import { Projection } from '../security/field-projection.ts';
import type { PermissionSet } from '../security/permission-set.ts';
import { projectedValueMessage } from '../security/projected-change.ts';
import type { PatchOp } from '../../core/delta.ts';
import type { Filter } from '../../core/filter.ts';
import { composePatches } from '../../core/patch-compose.ts';
import { type Selector, matchesSegments } from '../../core/selector.ts';
import type { Topic, TopicView } from '../../core/topic.ts';
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
  /** The client holds `held` of the topic at `path` once the answer arrives (null: nothing). */
  sent(path: string, held: { version: number; value: Topic['value'] } | null): void;
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
  ) {}

  send(wire: string): void {
    this.chars += wire.length;
    this.sink.send(wire);
  }

  /** The topic as this subscription answers it; false when the filter does not match (nothing sent). */
  visit(topic: Topic, p: Projection): boolean {
    if (this.filter !== null && !this.filter.test(topic.value, p)) return false;
    this.topics++;
    const versions = this.versions;
    const held = versions !== null && Object.hasOwn(versions, topic.path) ? versions[topic.path] : undefined;
    if (held === undefined) {
      this.send(projectedValueMessage(topic, topic.version, p));
      this.sink.sent(topic.path, { version: topic.version, value: topic.value });
      return true;
    }
    if (held === topic.version) {
      this.sink.sent(topic.path, { version: held, value: topic.value });
      return true;
    }
    const patches = held < topic.version ? this.view.changesSince(topic, held) : null;
    const ops = patches === null ? null : projectAndCompose(patches, p);
    if (ops === null) {
      this.partial = true;
      this.send(projectedValueMessage(topic, topic.version, p));
      this.sink.sent(topic.path, { version: topic.version, value: topic.value });
    } else if (ops.length === 0) {
      this.sink.holds(topic, held); // nothing it may see changed: it keeps its version
    } else {
      this.send(updateText(topic.path, topic.version, JSON.stringify(p.value(topic.value)), JSON.stringify(ops), held));
      this.sink.sent(topic.path, { version: topic.version, value: topic.value });
    }
    return true;
  }

  /** A topic the client listed is not part of the answer: removed (reason `filter` when it exists and is readable). */
  removeListed(path: string, readable: boolean): void {
    if (this.versions === null || !Object.hasOwn(this.versions, path)) return;
    this.send(removalMessage(path, this.versions[path] + 1, readable ? 'filter' : undefined));
    this.sink.sent(path, null);
  }
}

export function answerSubscribe(req: AnswerRequest, sink: AnswerSink): Answer {
  const { view, resume } = req;
  const versions = resume !== undefined && resume.epoch === view.epoch ? resume.versions : null;
  const writer = new AnswerWriter(view, req.filter, versions, sink);
  const seen = versions ? new Set<string>() : null;
  const pageChars = req.pageChars ?? Infinity;
  // Past the first page, the matching paths are only remembered, in walk order: their values go
  // out in later pages, read when each page is written (see AnswerPages).
  let later: Set<string> | null = null;

  forEachReadable(req, (topic, p) => {
    if (later !== null || writer.chars >= pageChars) {
      if (req.filter !== null && !req.filter.test(topic.value, p)) return;
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
      writer.removeListed(path, topic !== undefined && readableProjection(req.permissions, topic, segments) !== null);
    }
  }
  const answer: Answer = { topics: writer.topics, resumed: resumeKind(resume, versions, writer.partial) };
  if (later === null) return answer;
  const waiting: Set<string> = later;
  return { ...answer, rest: new AnswerPages(writer, waiting, writer.topics + waiting.size) };
}

function resumeKind(resume: ResumeState | undefined, versions: unknown, partial: boolean): ResumeKind | undefined {
  return resume === undefined ? undefined : versions === null ? 'fresh' : partial ? 'partial' : 'exact';
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
  constructor(
    private readonly writer: AnswerWriter,
    private readonly waiting: Set<string>,
    /** Topics the answer matched when it started. */
    readonly total: number,
  ) {}

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
    return resumeKind(resume, this.writer.versions, this.writer.partial);
  }

  /**
   * Sends the next page through the writer's sink: topics in order until about `pageChars`
   * characters, each at its current value and seen through the session's current permissions.
   */
  next(view: TopicView, permissions: PermissionSet | null, pageChars: number): void {
    const writer = this.writer;
    writer.chars = 0;
    for (const path of this.waiting) {
      this.waiting.delete(path);
      const topic = view.get(path);
      const segments = path.split('/');
      const p = topic === undefined ? null : readableProjection(permissions, topic, segments);
      if (topic === undefined || p === null || !writer.visit(topic, p)) writer.removeListed(path, topic !== undefined && p !== null);
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

function readableProjection(permissions: PermissionSet | null, topic: Topic, segments: readonly string[]): Projection | null {
  if (permissions === null) return Projection.ALL;
  return topic.tenant === permissions.tenant ? permissions.access(segments) : null;
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

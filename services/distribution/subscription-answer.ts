/**
 * The answer to a `subscribe`: the current value of every topic the selector and filter match
 * that the session may read, projected onto its fields; or, with `resume` in the same epoch, only
 * what changed since the versions the client holds: nothing for a topic at the same version, one
 * delta (its history's patches composed, with `base`) where the history reaches and the delta is
 * smaller than the value, the value otherwise, and a removal for a listed topic that is gone, no
 * longer readable (indistinguishable from gone) or no longer matching the filter.
 *
 * Synchronous on purpose: the hand-off delivers batches on this same event loop, so no change can
 * fall between reading the state here and the subscription going live.
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
  /** Topics the subscription matches now. */
  readonly topics: number;
  /** How a resume was answered; undefined without one. */
  readonly resumed: ResumeKind | undefined;
}

export function answerSubscribe(req: AnswerRequest, sink: AnswerSink): Answer {
  const { view, filter, resume } = req;
  const versions = resume !== undefined && resume.epoch === view.epoch ? resume.versions : null;
  const seen = versions ? new Set<string>() : null;
  let topics = 0;
  let partial = false;

  const visit = (topic: Topic, p: Projection): void => {
    if (filter !== null && !filter.test(topic.value, p)) return;
    topics++;
    const held = versions !== null && Object.hasOwn(versions, topic.path) ? versions[topic.path] : undefined;
    if (held === undefined) {
      sendValue(topic, p, sink);
      return;
    }
    seen!.add(topic.path);
    if (held === topic.version) {
      sink.sent(topic.path, { version: held, value: topic.value });
      return;
    }
    const patches = held < topic.version ? view.changesSince(topic, held) : null;
    const ops = patches === null ? null : projectAndCompose(patches, p);
    if (ops === null) {
      partial = true;
      sendValue(topic, p, sink);
    } else if (ops.length === 0) {
      sink.holds(topic, held); // nothing it may see changed: it keeps its version
    } else {
      sink.send(updateText(topic.path, topic.version, JSON.stringify(p.value(topic.value)), JSON.stringify(ops), held));
      sink.sent(topic.path, { version: topic.version, value: topic.value });
    }
  };
  forEachReadable(req, visit);

  if (versions !== null) {
    for (const path of Object.keys(versions)) {
      if (seen!.has(path)) continue;
      const segments = path.split('/');
      if (!matchesSegments(req.selector, segments)) continue;
      const topic = view.get(path);
      // A topic the session may not read is answered exactly like a missing one.
      const readable = topic !== undefined && readableProjection(req.permissions, topic, segments) !== null;
      sink.send(removalMessage(path, versions[path] + 1, readable ? 'filter' : undefined));
      sink.sent(path, null);
    }
  }
  const resumed: ResumeKind | undefined = resume === undefined ? undefined : versions === null ? 'fresh' : partial ? 'partial' : 'exact';
  return { topics, resumed };
}

function sendValue(topic: Topic, p: Projection, sink: AnswerSink): void {
  sink.send(projectedValueMessage(topic, topic.version, p));
  sink.sent(topic.path, { version: topic.version, value: topic.value });
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

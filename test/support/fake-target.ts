/**
 * A DeliveryTarget that records what fan-out hands it: the fake port for fan-out's unit tests, in
 * place of a Session (which needs a socket and a server). Every field fan-out reads is real.
 */
import type { ChangeContext, DeliveryTarget, Subscription } from '../../services/distribution/fan-out.ts';
import type { PermissionSet } from '../../services/security/permission-set.ts';
import type { TopicChange } from '../../core/topic.ts';

export interface RecordingTarget extends DeliveryTarget {
  /** Wire texts enqueued, in order. */
  readonly got: string[];
  /** Their UTF-8 sizes as fan-out reported them. */
  readonly bytes: number[];
  /** [batch, seq] of each enqueue. */
  readonly groups: Array<[number, number]>;
  /** deliveryFailed calls. */
  readonly failures: Array<{ err: unknown; path: string }>;
  /** Changes handed over for the target's own decision (simple: false), with the subscriptions gathered for each. */
  readonly gathered: Array<{ change: TopicChange; subs: Subscription[]; ctx: ChangeContext }>;
  simple: boolean;
}

export function recordingTarget(options: { scope?: string | null; permissions?: PermissionSet | null; throws?: boolean; simple?: boolean } = {}): RecordingTarget {
  let current: Subscription[] = [];
  const target: RecordingTarget = {
    lastChange: 0,
    gatherStamp: 0,
    simple: options.simple ?? true,
    scope: options.scope ?? options.permissions?.tenant ?? null,
    permissions: options.permissions ?? null,
    got: [],
    bytes: [],
    groups: [],
    failures: [],
    gathered: [],
    gathering: {
      begin: (sub) => (current = [sub]),
      gather: (sub) => current.push(sub),
    },
    enqueue(wire, bytes, batch, seq) {
      if (options.throws) throw new Error('injected enqueue failure');
      target.got.push(wire);
      target.bytes.push(bytes);
      target.groups.push([batch, seq]);
    },
    deliverGathered(change, _segments, ctx) {
      if (options.throws) throw new Error('injected delivery failure');
      target.gathered.push({ change, subs: current, ctx });
    },
    deliveryFailed(err, path) {
      target.failures.push({ err, path });
    },
  };
  return target;
}

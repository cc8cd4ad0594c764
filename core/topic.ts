/**
 * Topics as every room sees them: a topic (path, tenant, value, version), an update requested by a
 * mapping, a change of topic state with its wire text, the changes of one source transaction, and
 * read access to the state. Topic state (services/topics) produces them; distribution reads them.
 */
import type { JsonObject } from './json.ts';
import type { PatchOp } from './delta.ts';
import type { Selector } from './selector.ts';

export const DEFAULT_TENANT = 'default';

export interface Topic {
  readonly path: string;
  readonly tenant: string;
  /** Which mapping produced the topic (e.g. `postgres:public.orders`), for truncates and resets. */
  readonly source: string;
  value: JsonObject;
  version: number;
  /**
   * The seq of the batch that last changed the topic (created or updated it), so a client
   * resuming from a position is sent only topics changed after it. Absent: unknown (a state
   * stored before it was kept): treated as changed after any position.
   */
  seq?: number;
  /**
   * The value as JSON text, when the topic has it at hand (read from the durable store and not
   * changed since): a message built from it saves a parse and an encode. Absent: encode `value`.
   */
  readonly valueJson?: string;
}

/**
 * A topic as it is kept and read back: the durable store's record (services/state) and what topic
 * state restores from or reads through its index (services/topics), one shape for both sides.
 */
export interface TopicRecord {
  readonly path: string;
  readonly tenant: string;
  /** Which mapping produced it (e.g. `postgres:public.orders`). */
  readonly source: string;
  readonly version: number;
  readonly value: JsonObject;
  /** The seq of the batch that last changed it; absent: unknown (a format 1 record), changed after any position as far as a resume knows. */
  readonly seq?: number;
}

/** The topic's value as JSON text (see `Topic.valueJson`). */
export function valueJsonOf(topic: Topic): string {
  return topic.valueJson ?? JSON.stringify(topic.value);
}

/** One requested change of topic state, as produced by a mapping. */
export interface TopicUpdate {
  path: string;
  source: string;
  tenant?: string;
  /** The new value; `null` removes the topic. */
  value: JsonObject | null;
  /** Fields whose cached value is kept because the source did not resend them (unchanged TOAST). */
  keep?: readonly string[];
}

/**
 * One change of one topic. `before` and `after` are the values around it (null before a
 * creation and after a removal): references to immutable objects, never copies, so the
 * distribution side can evaluate filters and projections on both sides of the change.
 */
export type TopicChange =
  | {
      readonly type: 'value'; readonly topic: Topic; readonly version: number; readonly wire: string; readonly before: JsonObject | null; readonly after: JsonObject;
      /** `after` as JSON text, when the change has it at hand (the durable store writes it as is). */
      readonly afterJson?: string;
    }
  | {
      readonly type: 'delta'; readonly topic: Topic; readonly version: number; readonly patch: PatchOp[]; readonly wire: string;
      readonly before: JsonObject; readonly after: JsonObject;
      /** UTF-8 bytes of `after` serialized: what the value would have cost instead (serialized here anyway, to compare). */
      readonly valueBytes: number;
      /** `after` as JSON text, when the change has it at hand (the durable store writes it as is). */
      readonly afterJson?: string;
    }
  | { readonly type: 'removal'; readonly topic: Topic; readonly version: number; readonly wire: string; readonly before: JsonObject; readonly after: null };

/** The changes of one source transaction, in commit order. */
export interface ChangeBatch {
  readonly epoch: string;
  readonly seq: number;
  readonly changes: TopicChange[];
  /**
   * True when more of the same source transaction follows in the next batch(es): a transaction
   * too large to apply at once (Postgres, over 10,000 row changes) is applied in parts, and no
   * client may see a part alone. The batches up to the next one without it are one transaction.
   */
  readonly continues?: boolean;
}

/** Read access to topic state, as the distribution side needs it. */
export interface TopicView {
  readonly epoch: string;
  /** Sequence number of the last batch applied (0 before any). */
  readonly position: number;
  get(path: string): Topic | undefined;
  /** Visits every topic matching the selector. */
  forEachMatching(selector: Selector, visit: (topic: Topic) => void): void;
  readonly size: number;
  /**
   * The patches that turned `version` of the topic into its current version, oldest first ([]
   * when it is current), or null when the history no longer reaches back that far.
   */
  changesSince(topic: Topic, version: number): ReadonlyArray<readonly PatchOp[]> | null;
  /**
   * For resuming from a position (docs/PROTOCOL.md, "Resuming"): the version the topic had once
   * batch `seq` was applied, where the history still knows it (null: send the value). Absent: a
   * view that cannot answer positions (every such resume is answered whole).
   */
  versionAt?(topic: Topic, seq: number): number | null;
  /** The removals after batch `seq`, oldest first; null when the removal log no longer reaches back to `seq`. */
  /** The version a removed path had at its removal, when still remembered. */
  removedVersion?(path: string): number | undefined;
  removalsSince?(seq: number): Iterable<{ readonly path: string; readonly version: number; readonly tenant: string }> | null;
  /**
   * True for a position this state never reached in its numbering: one a client got before a crash,
   * past what the store had made durable (the restart numbers its batches after a gap, so such
   * positions are told apart from its own). Answered whole.
   */
  positionLost?(seq: number): boolean;
}

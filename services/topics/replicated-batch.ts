/**
 * A batch as another node's topic state minted it, to be applied by a replica with the versions it
 * carries (issue #15: an edge node materialises topic state from the hand-off log, never numbering
 * changes itself, so every edge holds the versions the ingest node sent). This file checks a batch
 * against the replica's state before any of it is applied: a delta whose base version the replica
 * does not hold (a gap), a change to a topic it does not have, a version that does not follow —
 * any of them refuses the whole batch, so a replica never holds half a transaction or a guessed
 * state. TopicStore.replicate applies what the check planned.
 */
import { TidewireError } from '../../core/errors.ts';
import { type JsonObject, isJsonObject } from '../../core/json.ts';
import { JsonPatchError, applyPatch } from '../../core/json-patch.ts';
import { type PatchOp, diffValues } from '../../core/delta.ts';
import type { Topic } from '../../core/topic.ts';

/**
 * One change as minted by the ingest node: `after` whole (value), or the patch from the version
 * before (delta). A value says whether it created the topic (`created`: there was none before), so
 * a replica that missed the creation of a topic tells the update it sees next from a creation.
 */
export type ReplicatedChange =
  | {
      readonly type: 'value'; readonly path: string; readonly tenant: string; readonly source: string; readonly version: number; readonly value: JsonObject;
      readonly created: boolean;
    }
  | { readonly type: 'delta'; readonly path: string; readonly tenant: string; readonly source: string; readonly version: number; readonly patch: PatchOp[] }
  | { readonly type: 'removal'; readonly path: string; readonly tenant: string; readonly source: string; readonly version: number };

export interface ReplicatedBatch {
  readonly epoch: string;
  readonly seq: number;
  readonly changes: readonly ReplicatedChange[];
  /** More of the same source transaction follows (ChangeBatch.continues). */
  readonly continues?: boolean;
}

/**
 * A batch a replica cannot apply. Codes: `REPLICA_GAP` (a change's base version is not the one
 * held: a batch was missed or applied twice), `REPLICA_DIVERGED` (the change does not fit the state
 * at all: a patch that does not apply, another tenant or source, a value equal to the one held),
 * `REPLICA_ORDER` (a seq not after the replica's position), `REPLICA_EPOCH` (a batch of another
 * epoch), `REPLICA_MIXED` (a store that numbers its own changes asked to replicate, or the
 * reverse). None is retriable as is: the replica must be rebuilt from the log or from current state.
 */
export class ReplicaError extends TidewireError {
  constructor(code: 'REPLICA_GAP' | 'REPLICA_DIVERGED' | 'REPLICA_ORDER' | 'REPLICA_EPOCH' | 'REPLICA_MIXED', message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'ReplicaError';
  }
}

/** What TopicStore.replicate does for one change, once the whole batch was found to fit. */
export type ReplicaStep =
  | { readonly kind: 'create'; readonly change: ReplicatedChange; readonly value: JsonObject }
  | { readonly kind: 'update'; readonly change: ReplicatedChange; readonly value: JsonObject; readonly patch: PatchOp[] }
  | { readonly kind: 'remove'; readonly change: ReplicatedChange };

/** The replica's state as the check reads it. */
export interface ReplicaState {
  get(path: string): Topic | undefined;
  removedVersion(path: string): number | undefined;
}

/** A path as the batch leaves it so far (a transaction may change one row several times). */
interface Pending {
  readonly value: JsonObject | null;
  readonly version: number;
  readonly tenant: string;
  readonly source: string;
}

/**
 * Checks every change of `batch` against `state` (and the changes before it in the batch) and
 * returns what to apply; throws ReplicaError for the first one that does not fit.
 */
export function planReplica(batch: ReplicatedBatch, state: ReplicaState): ReplicaStep[] {
  const pending = new Map<string, Pending>();
  const steps: ReplicaStep[] = [];
  const at = (c: ReplicatedChange) => `batch ${batch.seq}: ${c.type} of "${c.path}" at version ${c.version}`;
  for (const c of batch.changes) {
    const held = pending.get(c.path) ?? heldNow(state, c.path);
    if (c.type === 'value' && c.created) {
      if (held !== null && held.value !== null) throw new ReplicaError('REPLICA_GAP', `${at(c)}: it creates the topic, but this replica holds version ${held.version} of it`);
      const removedAt = held?.version ?? state.removedVersion(c.path);
      if (removedAt !== undefined && c.version <= removedAt) {
        throw new ReplicaError('REPLICA_GAP', `${at(c)}: the path was removed at version ${removedAt}, so a new topic there starts after it`);
      }
      steps.push({ kind: 'create', change: c, value: c.value });
      pending.set(c.path, { value: c.value, version: c.version, tenant: c.tenant, source: c.source });
      continue;
    }
    if (held === null || held.value === null) throw new ReplicaError('REPLICA_GAP', `${at(c)}: this replica does not hold the topic`);
    if (c.version !== held.version + 1) throw new ReplicaError('REPLICA_GAP', `${at(c)}: this replica holds version ${held.version}, the change is based on ${c.version - 1}`);
    if (c.tenant !== held.tenant || c.source !== held.source) {
      throw new ReplicaError('REPLICA_DIVERGED', `${at(c)}: the change is for tenant "${c.tenant}", source "${c.source}"; this replica holds tenant "${held.tenant}", source "${held.source}"`);
    }
    if (c.type === 'removal') {
      steps.push({ kind: 'remove', change: c });
      pending.set(c.path, { ...held, value: null, version: c.version });
      continue;
    }
    let value: JsonObject;
    let patch: PatchOp[];
    if (c.type === 'delta') {
      value = patched(held.value, c.patch, at(c));
      patch = c.patch;
    } else {
      value = c.value;
      // The ingest node recorded this patch in its history; the same diff of the same values gives it here.
      patch = diffValues(held.value, value);
      if (patch.length === 0) throw new ReplicaError('REPLICA_DIVERGED', `${at(c)}: the value equals the one this replica holds, so the ingest node held another`);
    }
    steps.push({ kind: 'update', change: c, value, patch });
    pending.set(c.path, { ...held, value, version: c.version });
  }
  return steps;
}

function heldNow(state: ReplicaState, path: string): Pending | null {
  const t = state.get(path);
  return t === undefined ? null : { value: t.value, version: t.version, tenant: t.tenant, source: t.source };
}

function patched(base: JsonObject, patch: readonly PatchOp[], at: string): JsonObject {
  let after: unknown;
  try {
    after = applyPatch(base, patch);
  } catch (err) {
    if (err instanceof JsonPatchError) throw new ReplicaError('REPLICA_DIVERGED', `${at}: its patch does not apply to the value held (${err.message})`, { cause: err });
    throw err;
  }
  if (!isJsonObject(after)) throw new ReplicaError('REPLICA_DIVERGED', `${at}: its patch turns the value into something other than an object`);
  return after;
}

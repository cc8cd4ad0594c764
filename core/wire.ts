/**
 * The wire text of topic messages — `value`, `delta`, `removal` — and the one rule that picks a
 * delta or a value: a delta only when its patch is shorter than the value it stands for. Every
 * place that sends topic data writes it through here (docs/PROTOCOL.md, schemas/protocol/), so
 * the text and the rule cannot diverge between the store, fan-out, resumes and merged updates.
 * Part of the floor: imports nothing above services/topics.
 */
import type { PatchOp } from './patch.ts';

/**
 * Why a topic that still exists stops arriving: `access` (the session may no longer read it),
 * `filter` (its value no longer matches). Absent: the topic is gone.
 */
export type RemovalReason = 'access' | 'filter';

/** A delta stands for the value only when it is shorter (both as JSON text). */
export function prefersDelta(patchJson: string, valueJson: string): boolean {
  return patchJson.length < valueJson.length;
}

/** A `value` message from the value's JSON text. */
export function valueText(path: string, version: number, valueJson: string): string {
  return `{"type":"value","path":${JSON.stringify(path)},"version":${version},"value":${valueJson}}`;
}

/** A `value` message. */
export function valueMessage(path: string, version: number, value: object): string {
  return valueText(path, version, JSON.stringify(value));
}

/** A `delta` from the patch's JSON text; `base` is written only when it is not `version - 1`. */
export function deltaText(path: string, version: number, patchJson: string, base = version - 1): string {
  const b = base === version - 1 ? '' : `,"base":${base}`;
  return `{"type":"delta","path":${JSON.stringify(path)},"version":${version}${b},"patch":${patchJson}}`;
}

/** A `delta`; `base` is written only when it is not `version - 1`. */
export function deltaMessage(path: string, version: number, patch: readonly PatchOp[], base = version - 1): string {
  return deltaText(path, version, JSON.stringify(patch), base);
}

/**
 * The update of a client that holds `base` (0: nothing) to `version`: the delta when there is a
 * patch and it is shorter than the value, else the value.
 */
export function updateText(path: string, version: number, valueJson: string, patchJson: string | null, base = version - 1): string {
  return patchJson !== null && base > 0 && prefersDelta(patchJson, valueJson) ? deltaText(path, version, patchJson, base) : valueText(path, version, valueJson);
}

/** A removal at exactly `version` (at least 2, as in the schema), with a reason when the topic still exists. */
export function removalMessage(path: string, version: number, reason?: RemovalReason): string {
  const tail = reason === undefined ? '' : `,"reason":"${reason}"`;
  return `{"type":"removal","path":${JSON.stringify(path)},"version":${Math.max(2, version)}${tail}}`;
}

/** The topic (at `version`) still exists, but the session may no longer read it. */
export function accessRemovalMessage(path: string, version: number): string {
  return removalMessage(path, version + 1, 'access');
}

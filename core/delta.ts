/**
 * Deltas on the wire are RFC 6902 JSON Patch documents, so a client in any language with a
 * standard JSON library can apply them. Top-level fields (the columns of a row) are compared
 * with a value-aware shallow compare, which is several times faster than a full structural diff
 * (measured: ~550k vs ~80k rows/s for 8 fields); nested objects (json/jsonb columns, nested
 * Kafka values) that differ are diffed with json-diff-ts so a change deep inside them stays small.
 * Arrays that differ are replaced whole: index-based patch operations on arrays are easy to get
 * wrong for clients and rarely smaller.
 */
import { Operation, diff, type IChange } from 'json-diff-ts';
import { type JsonObject, isJsonObject, jsonEqual } from './json.ts';
import type { PatchOp } from './patch.ts';

export type { PatchOp };

/** RFC 6901: `~` becomes `~0`, `/` becomes `~1`. */
export function pointerSegment(key: string): string {
  return key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key;
}

/** The JSON Patch turning `prev` into `next`; empty when they are equal. */
export function diffValues(prev: JsonObject, next: JsonObject): PatchOp[] {
  const ops: PatchOp[] = [];
  for (const key in prev) {
    if (!Object.hasOwn(next, key)) ops.push({ op: 'remove', path: `/${pointerSegment(key)}` });
  }
  for (const key in next) {
    const n = next[key];
    if (!Object.hasOwn(prev, key)) {
      ops.push({ op: 'add', path: `/${pointerSegment(key)}`, value: n });
      continue;
    }
    const p = prev[key];
    if (p === n) continue;
    if (isJsonObject(p) && isJsonObject(n)) {
      if (!jsonEqual(p, n)) nestedPatch(diff(p, n), `/${pointerSegment(key)}`, n, ops);
    } else if (typeof p !== 'object' || typeof n !== 'object' || !jsonEqual(p, n)) {
      ops.push({ op: 'replace', path: `/${pointerSegment(key)}`, value: n });
    }
  }
  return ops;
}

/** Converts json-diff-ts's change tree for an object into JSON Patch operations. */
function nestedPatch(changes: IChange[], base: string, next: JsonObject, ops: PatchOp[]): void {
  for (const c of changes) {
    const path = `${base}/${pointerSegment(c.key)}`;
    if (c.type === Operation.REMOVE) {
      // json-diff-ts reports a type change as REMOVE + ADD of the same key; the ADD alone
      // (JSON Patch `add` replaces an existing member) says it.
      if (!Object.hasOwn(next, c.key)) ops.push({ op: 'remove', path });
      continue;
    }
    const nextValue = next[c.key];
    if (c.type === Operation.ADD) ops.push({ op: 'add', path, value: nextValue });
    else if (c.changes && c.embeddedKey === undefined && isJsonObject(nextValue)) nestedPatch(c.changes, path, nextValue, ops);
    else ops.push({ op: 'replace', path, value: nextValue });
  }
}

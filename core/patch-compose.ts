/**
 * One JSON Patch standing for several consecutive ones (a resume across versions, a throttled
 * topic's changes between two sends). Applying patches one after another is the same as applying
 * their concatenation, so that is always correct; on top of it, an operation on a top-level
 * member (a column) makes every earlier operation on that member redundant, so only the last
 * one is kept. A price that ticked 500 times becomes one `replace`.
 *
 * Relies on the patches being made by diffValues (delta.ts): a top-level `add` there means the
 * member did not exist before, which decides whether the surviving operation must be `add`,
 * `replace`, a `remove`, or nothing at all (added and removed again).
 */
import type { PatchOp } from './delta.ts';

export function composePatches(patches: ReadonlyArray<readonly PatchOp[]>): PatchOp[] {
  if (patches.length === 1) return patches[0].slice();
  const flat: PatchOp[] = [];
  for (const p of patches) for (const op of p) flat.push(op);
  const lastTop = new Map<string, number>();
  const addedFirst = new Set<string>();
  const seen = new Set<string>();
  for (let i = 0; i < flat.length; i++) {
    const { key, top } = member(flat[i].path);
    if (key === null) return flat; // an operation on the whole document: keep everything as it is
    if (!seen.has(key)) {
      seen.add(key);
      if (top && flat[i].op === 'add') addedFirst.add(key);
    }
    if (top) lastTop.set(key, i);
  }
  const out: PatchOp[] = [];
  for (let i = 0; i < flat.length; i++) {
    const op = flat[i];
    const key = member(op.path).key!;
    const last = lastTop.get(key);
    if (last === undefined || i > last) {
      out.push(op);
      continue;
    }
    if (i < last) continue;
    const existed = !addedFirst.has(key);
    if (op.op === 'remove') {
      if (existed) out.push(op);
    } else {
      out.push({ op: existed ? 'replace' : 'add', path: op.path, value: op.value });
    }
  }
  return out;
}

/** The top-level member (escaped as in the pointer) an operation addresses, and whether it is that member itself. */
function member(pointer: string): { key: string | null; top: boolean } {
  if (pointer.length === 0) return { key: null, top: false };
  const end = pointer.indexOf('/', 1);
  return end < 0 ? { key: pointer.slice(1), top: true } : { key: pointer.slice(1, end), top: false };
}

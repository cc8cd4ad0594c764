/**
 * RFC 6902 JSON Patch `add`, `remove` and `replace` (the operations tidewire sends), applied
 * without mutating the input: the result shares every untouched branch with it. Paths are RFC
 * 6901 JSON Pointers (`~1` is `/`, `~0` is `~`, `-` appends to an array). Any operation that
 * does not apply cleanly throws JsonPatchError, so a client never silently holds a wrong value.
 * On the floor because both sides apply patches: the SDK (client/json-patch.ts re-exports it)
 * and an edge node rebuilding topic state from the hand-off log (services/handoff).
 */
import type { JsonValue } from './json.ts';
import type { PatchOperation } from './messages.ts';

export class JsonPatchError extends Error {
  readonly code = 'INVALID_PATCH';
  constructor(message: string) {
    super(message);
    this.name = 'JsonPatchError';
  }
}

/** Splits a JSON Pointer into unescaped reference tokens; `""` is the whole document. */
export function parsePointer(pointer: string): string[] {
  if (typeof pointer !== 'string') throw new JsonPatchError('a patch path must be a string');
  if (pointer === '') return [];
  if (pointer[0] !== '/') throw new JsonPatchError(`path "${pointer}" must start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => {
      if (/~[^01]|~$/.test(t)) throw new JsonPatchError(`path "${pointer}" has an invalid escape: only ~0 and ~1 are allowed`);
      return t.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

/**
 * Applies `ops` in order and returns the new document.
 * @example applyPatch({ a: 1 }, [{ op: 'replace', path: '/a', value: 2 }]) // → { a: 2 }
 */
export function applyPatch(doc: JsonValue, ops: readonly PatchOperation[]): JsonValue {
  if (!Array.isArray(ops)) throw new JsonPatchError('a patch must be an array of operations');
  let out = doc;
  for (const op of ops) out = applyOperation(out, op);
  return out;
}

export function applyOperation(doc: JsonValue, op: PatchOperation): JsonValue {
  if (typeof op !== 'object' || op === null) throw new JsonPatchError('a patch operation must be an object');
  const kind = (op as { op: unknown }).op;
  if (kind !== 'add' && kind !== 'remove' && kind !== 'replace') {
    throw new JsonPatchError(`unsupported operation "${String(kind)}": tidewire sends add, remove and replace`);
  }
  if ((kind === 'add' || kind === 'replace') && !('value' in op)) throw new JsonPatchError(`"${kind}" needs a value`);
  const tokens = parsePointer(op.path);
  if (tokens.length === 0) {
    if (kind === 'remove') throw new JsonPatchError('cannot remove the whole document');
    return (op as { value: JsonValue }).value;
  }
  return update(doc, tokens, 0, op);
}

/** Copies the container at tokens[depth] and recurses; the last token is where `op` applies. */
function update(node: JsonValue, tokens: string[], depth: number, op: PatchOperation): JsonValue {
  if (typeof node !== 'object' || node === null) {
    throw new JsonPatchError(`path "${op.path}" goes through a ${node === null ? 'null' : typeof node}, not an object or array`);
  }
  const token = tokens[depth];
  const last = depth === tokens.length - 1;
  if (Array.isArray(node)) {
    const copy = node.slice();
    if (last) {
      applyToArray(copy, token, op);
      return copy;
    }
    const i = arrayIndex(token, node.length, false, op.path);
    copy[i] = update(node[i], tokens, depth + 1, op);
    return copy;
  }
  const copy: { [key: string]: JsonValue } = { ...node };
  if (last) {
    applyToObject(copy, token, op);
    return copy;
  }
  if (!Object.hasOwn(node, token)) throw new JsonPatchError(`path "${op.path}": member "${token}" does not exist`);
  setMember(copy, token, update(node[token], tokens, depth + 1, op));
  return copy;
}

function applyToArray(arr: JsonValue[], token: string, op: PatchOperation): void {
  switch (op.op) {
    case 'add':
      arr.splice(token === '-' ? arr.length : arrayIndex(token, arr.length, true, op.path), 0, op.value);
      return;
    case 'replace':
      arr[arrayIndex(token, arr.length, false, op.path)] = op.value;
      return;
    case 'remove':
      arr.splice(arrayIndex(token, arr.length, false, op.path), 1);
  }
}

function applyToObject(obj: { [key: string]: JsonValue }, token: string, op: PatchOperation): void {
  if (op.op !== 'add' && !Object.hasOwn(obj, token)) {
    throw new JsonPatchError(`cannot ${op.op} "${op.path}": member "${token}" does not exist`);
  }
  if (op.op === 'remove') delete obj[token];
  else setMember(obj, token, op.value);
}

/** RFC 6901 array index: `0` or digits without a leading zero; `add` may also name the end. */
function arrayIndex(token: string, length: number, forAdd: boolean, path: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new JsonPatchError(`path "${path}": "${token}" is not an array index`);
  const i = Number(token);
  if (forAdd ? i > length : i >= length) throw new JsonPatchError(`path "${path}": index ${i} is out of bounds (length ${length})`);
  return i;
}

/** Sets an own member; `__proto__` (a legal JSON key) must not reach the prototype setter. */
function setMember(obj: { [key: string]: JsonValue }, key: string, value: JsonValue): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}

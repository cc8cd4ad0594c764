/**
 * What the store writes, as text: a topic as the JSON array `[version, tenant, source, value, seq]`
 * (format 1 wrote no seq), a removal of the log as `[version, tenant]` under `<seq>\n<path>`
 * (one JSON.stringify per change, no escaping of the value inside another string), the format
 * marker as `{"store":"tidewire-state","format":1}`. Decoding checks every field, so a damaged
 * record is reported as such instead of reaching topic state.
 */
import { type JsonObject, isJsonObject } from '../../core/json.ts';
import type { StoredRemoval, StoredTopic } from './state-store.ts';

export const STORE_NAME = 'tidewire-state';

export function encodeTopic(t: StoredTopic): string {
  return t.seq === undefined ? JSON.stringify([t.version, t.tenant, t.source, t.value]) : JSON.stringify([t.version, t.tenant, t.source, t.value, t.seq]);
}

/** A removal log key: the seq, zero-padded so keys sort by seq, then the path. */
export function removalKey(seq: number, path: string): string {
  return `${String(seq).padStart(16, '0')}\n${path}`;
}

export function encodeRemoval(version: number, tenant: string): string {
  return JSON.stringify([version, tenant]);
}

/** The removal, or null when the record is not one this format writes. */
export function decodeRemoval(key: string, text: unknown): StoredRemoval | null {
  const cut = key.indexOf('\n');
  const seq = Number(key.slice(0, cut));
  if (cut !== 16 || !Number.isSafeInteger(seq) || typeof text !== 'string') return null;
  try {
    const v = JSON.parse(text);
    if (!Array.isArray(v) || v.length !== 2 || !Number.isSafeInteger(v[0]) || typeof v[1] !== 'string') return null;
    return { seq, path: key.slice(cut + 1), version: v[0], tenant: v[1] };
  } catch {
    return null;
  }
}

/**
 * A stored topic read from a walk of the store, decoded when a field past its path is first read:
 * a walk that needs only paths (the pages after the first of a large answer, issue #12 item 7)
 * parses nothing. A record that does not decode throws `corrupt(path)` at that first read.
 */
export class LazyStoredTopic implements StoredTopic {
  #text: string;
  #topic: StoredTopic | null = null;
  readonly #corrupt: (path: string) => Error;

  constructor(
    readonly path: string,
    text: string,
    corrupt: (path: string) => Error,
  ) {
    this.#text = text;
    this.#corrupt = corrupt;
  }

  get tenant(): string {
    return this.decoded().tenant;
  }

  get source(): string {
    return this.decoded().source;
  }

  get version(): number {
    return this.decoded().version;
  }

  get value(): JsonObject {
    return this.decoded().value;
  }

  get seq(): number | undefined {
    return this.decoded().seq;
  }

  private decoded(): StoredTopic {
    if (this.#topic !== null) return this.#topic;
    const topic = decodeTopic(this.path, this.#text);
    if (topic === null) throw this.#corrupt(this.path);
    this.#text = '';
    return (this.#topic = topic);
  }
}

/** The topic, or null when the text is not a record this format writes. */
export function decodeTopic(path: string, text: unknown): StoredTopic | null {
  if (typeof text !== 'string') return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || (v.length !== 4 && v.length !== 5)) return null;
  const [version, tenant, source, value, seq] = v;
  if (!Number.isSafeInteger(version) || version < 1 || typeof tenant !== 'string' || typeof source !== 'string' || !isJsonObject(value)) return null;
  if (v.length === 5 && (!Number.isSafeInteger(seq) || seq < 0)) return null;
  return v.length === 5 ? { path, tenant, source, version, value, seq } : { path, tenant, source, version, value };
}

export function encodeFormat(format: number): string {
  return JSON.stringify({ store: STORE_NAME, format });
}

/** The format version, or null when the marker is not one this store writes. */
export function decodeFormat(text: unknown): number | null {
  if (typeof text !== 'string') return null;
  try {
    const v = JSON.parse(text);
    return isJsonObject(v) && v.store === STORE_NAME && Number.isSafeInteger(v.format) ? (v.format as number) : null;
  } catch {
    return null;
  }
}

/** A record of string → string (identity), or null. */
export function decodeStringMap(text: unknown): Record<string, string> | null {
  if (typeof text !== 'string') return null;
  try {
    const v = JSON.parse(text);
    if (!isJsonObject(v)) return null;
    for (const x of Object.values(v)) if (typeof x !== 'string') return null;
    return v as Record<string, string>;
  } catch {
    return null;
  }
}

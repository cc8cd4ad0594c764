/**
 * What the store writes, as text: a topic as the JSON array `[version, tenant, source, value]`
 * (one JSON.stringify per change, no escaping of the value inside another string), the format
 * marker as `{"store":"tidewire-state","format":1}`. Decoding checks every field, so a damaged
 * record is reported as such instead of reaching topic state.
 */
import { isJsonObject } from '../../core/json.ts';
import type { StoredTopic } from './state-store.ts';

export const STORE_NAME = 'tidewire-state';

export function encodeTopic(t: StoredTopic): string {
  return JSON.stringify([t.version, t.tenant, t.source, t.value]);
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
  if (!Array.isArray(v) || v.length !== 4) return null;
  const [version, tenant, source, value] = v;
  if (!Number.isSafeInteger(version) || version < 1 || typeof tenant !== 'string' || typeof source !== 'string' || !isJsonObject(value)) return null;
  return { path, tenant, source, version, value };
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

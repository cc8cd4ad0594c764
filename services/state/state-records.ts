/**
 * What the store writes, as text: a topic as the JSON array `[version, tenant, source, value, seq]`
 * (format 1 wrote no seq), a removal of the log as `[version, tenant]` under `<seq>\n<path>`
 * (one JSON.stringify per change, no escaping of the value inside another string), the format
 * marker as `{"store":"tidewire-state","format":1}`. A topic record is decoded as far as it is
 * read (LazyStoredTopic), each part checked, so a damaged record is reported as such instead of
 * reaching topic state.
 */
import { type JsonObject, isJsonObject } from '../../core/json.ts';
import type { StoredRemoval, StoredTopic } from './state-store.ts';

export const STORE_NAME = 'tidewire-state';

/** JSON text of a tenant or source name: few distinct ones, so each is quoted once. */
const quoted = new Map<string, string>();
function quote(name: string): string {
  let q = quoted.get(name);
  if (q === undefined) {
    q = JSON.stringify(name);
    if (quoted.size < 10_000) quoted.set(name, q);
  }
  return q;
}

/** The record's text before its value: `[version,tenant,source,`. */
function headOf(t: StoredTopic): string {
  return `[${t.version},${quote(t.tenant)},${quote(t.source)},`;
}

/** The record's text after its value. */
function tailOf(t: StoredTopic): string {
  return t.seq === undefined ? ']' : `,${t.seq}]`;
}

/**
 * The record, the JSON array as JSON.stringify would write it; `valueJson`, when given, is the
 * value's JSON.stringify, written as is rather than encoded again.
 */
export function encodeTopic(t: StoredTopic & { readonly valueJson?: string }): string {
  return `${headOf(t)}${t.valueJson ?? JSON.stringify(t.value)}${tailOf(t)}`;
}

/**
 * The same record as `encodeTopic`, written as UTF-8 into `into` from byte 0, the value's JSON text
 * `valueJson` copied as is (no string of the whole record is built); returns the bytes written, or
 * -1 when `into` may be too small (it needs `encodedBound(...)` bytes).
 */
export function writeTopic(t: StoredTopic, valueJson: string, into: Buffer): number {
  const head = headOf(t);
  const tail = tailOf(t);
  if (encodedBound(head.length + valueJson.length + tail.length) > into.length) return -1;
  let n = into.write(head, 0);
  n += into.write(valueJson, n);
  return n + into.write(tail, n);
}

/** Bytes of UTF-8 that `chars` UTF-16 code units take at most. */
export function encodedBound(chars: number): number {
  return chars * 3;
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
 * A topic read from the store, decoded as far as it is read (issue #12, item 7): its path costs
 * nothing (a walk that needs only paths, like the pages after the first of a large answer, parses
 * nothing); version, tenant, source and seq are scanned from the record's head without touching
 * the value; the value is parsed when it is first read, and `valueJson` hands out its text as
 * stored (a value message built from it needs neither a parse nor an encode). Topic state changes
 * a topic it read in place (value, version, seq), as it does the ones on the heap: once the value
 * is set, the stored text is dropped. A record that does not decode throws `corrupt(path)` where
 * it is read.
 */
export class LazyStoredTopic implements StoredTopic {
  #text: string;
  readonly #corrupt: (path: string) => Error;
  #headRead = false;
  #version = 0;
  #tenant = '';
  #source = '';
  #seq: number | undefined = undefined;
  #valueStart = 0;
  #valueEnd = 0;
  #value: JsonObject | null = null;

  constructor(
    readonly path: string,
    text: string,
    corrupt: (path: string) => Error,
  ) {
    this.#text = text;
    this.#corrupt = corrupt;
  }

  get tenant(): string {
    this.head();
    return this.#tenant;
  }

  get source(): string {
    this.head();
    return this.#source;
  }

  get version(): number {
    this.head();
    return this.#version;
  }

  set version(v: number) {
    this.head();
    this.#version = v;
  }

  get seq(): number | undefined {
    this.head();
    return this.#seq;
  }

  set seq(v: number | undefined) {
    this.head();
    this.#seq = v;
  }

  get value(): JsonObject {
    if (this.#value === null) {
      this.head();
      let v: unknown;
      try {
        v = JSON.parse(this.#text.slice(this.#valueStart, this.#valueEnd));
      } catch {
        throw this.#corrupt(this.path);
      }
      if (!isJsonObject(v)) throw this.#corrupt(this.path);
      this.#value = v;
    }
    return this.#value;
  }

  set value(v: JsonObject) {
    this.head();
    this.#value = v;
    this.#text = '';
  }

  /** The value's JSON text as stored; undefined once the value was changed. */
  get valueJson(): string | undefined {
    this.head();
    return this.#text === '' ? undefined : this.#text.slice(this.#valueStart, this.#valueEnd);
  }

  /** Reads the record's head now (a damaged record throws here rather than later). */
  checked(): this {
    this.head();
    return this;
  }

  /** `[version,"tenant","source",{value}(,seq)]`: everything but the value, by scanning. */
  private head(): void {
    if (this.#headRead) return;
    const t = this.#text;
    if (t.charCodeAt(0) !== 0x5b /* [ */) this.fail();
    const c1 = t.indexOf(',', 1);
    const version = Number(t.slice(1, c1));
    if (c1 < 0 || !Number.isSafeInteger(version) || version < 1) this.fail();
    const [tenant, afterTenant] = scanString(t, c1 + 1) ?? this.fail();
    if (t.charCodeAt(afterTenant) !== 0x2c /* , */) this.fail();
    const [source, afterSource] = scanString(t, afterTenant + 1) ?? this.fail();
    if (t.charCodeAt(afterSource) !== 0x2c || t.charCodeAt(afterSource + 1) !== 0x7b /* { */) this.fail();
    const last = t.length - 1;
    if (t.charCodeAt(last) !== 0x5d /* ] */) this.fail();
    let valueEnd = last;
    let seq: number | undefined;
    if (t.charCodeAt(last - 1) !== 0x7d /* } */) {
      // Format 2: a seq after the value.
      const c = t.lastIndexOf(',', last);
      seq = Number(t.slice(c + 1, last));
      if (c <= afterSource + 1 || t.charCodeAt(c - 1) !== 0x7d || !Number.isSafeInteger(seq) || seq < 0) this.fail();
      valueEnd = c;
    }
    this.#version = version;
    this.#tenant = tenant;
    this.#source = source;
    this.#seq = seq;
    this.#valueStart = afterSource + 1;
    this.#valueEnd = valueEnd;
    this.#headRead = true;
  }

  private fail(): never {
    throw this.#corrupt(this.path);
  }
}

/** The JSON string starting at `at` and the index after it, or null. */
function scanString(t: string, at: number): [string, number] | null {
  if (t.charCodeAt(at) !== 0x22 /* " */) return null;
  let escaped = false;
  for (let i = at + 1; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      escaped = true;
      i++;
    } else if (c === 0x22) {
      if (!escaped) return [t.slice(at + 1, i), i + 1];
      try {
        const s: unknown = JSON.parse(t.slice(at, i + 1));
        return typeof s === 'string' ? [s, i + 1] : null;
      } catch {
        return null;
      }
    }
  }
  return null;
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
/** A JSON array of strings (e.g. the sources whose row index is complete), or null when it is not one. */
export function decodeStringList(text: unknown): string[] | null {
  if (typeof text !== 'string') return null;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : null;
  } catch {
    return null;
  }
}

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

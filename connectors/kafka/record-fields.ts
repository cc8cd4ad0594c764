/**
 * The fields a path template or tenantField can name on a Kafka record:
 *
 *   {key}            the key as UTF-8 text          {key.id}       a field of a JSON key
 *   {value.venue}    a field of the value (nested:  {value.a.b}); for Debezium, of the row
 *   {headers.region} a header as UTF-8 text (the last one when repeated)
 *   {topic}          the Kafka topic name           {partition}    the partition number
 */
import { type JsonObject, type JsonValue, isJsonObject } from '../../core/json.ts';
import type { KafkaHeaders } from './kafka-client.ts';
import { unwrapConnectJson } from './debezium-envelope.ts';
import { parseExactJson } from './exact-json.ts';

export type FieldSource = 'key' | 'value' | 'headers' | 'topic' | 'partition';

export interface FieldRef {
  readonly text: string;
  readonly source: FieldSource;
  /** The steps below the source: `['a', 'b']` for `value.a.b`; empty for `key`, `topic`, `partition`. */
  readonly steps: readonly string[];
}

/** Parses a placeholder's field; returns a string saying what is wrong when it names nothing we have. */
export function parseFieldRef(text: string): FieldRef | string {
  const [head, ...steps] = text.split('.');
  switch (head) {
    case 'topic':
    case 'partition':
      return steps.length === 0 ? { text, source: head, steps } : `{${head}} has no fields`;
    case 'key':
      return { text, source: 'key', steps };
    case 'value':
      return steps.length > 0 ? { text, source: 'value', steps } : 'name a field of the value, like {value.id}';
    case 'headers':
      return steps.length === 1 ? { text, source: 'headers', steps } : 'name one header, like {headers.region}';
    default:
      return 'a placeholder must start with key, value, headers, topic or partition, like {value.id}';
  }
}

/** Why a key field could not be read. */
export const KEY_NOT_JSON = Symbol('key is not JSON');

/**
 * One record as the mapping sees it; the key is parsed as JSON at most once, and only when needed
 * (integers beyond 2^53 kept as exact strings, so `{key.id}` is the id's exact text).
 */
export class RecordFields {
  private parsedKey: JsonValue | typeof KEY_NOT_JSON | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly key: Buffer | null,
    private readonly headers: KafkaHeaders | undefined,
    /** The value object (for Debezium: the row image), or null for a tombstone. */
    public value: JsonObject | null,
    /** Turns the parsed key into the one fields are read from; by default the JsonConverter wrapper is removed. */
    private readonly readKey: (parsed: JsonValue) => JsonValue = unwrapConnectJson,
  ) {}

  /**
   * The field's value; `undefined` when the record lacks it (a missing field, a null key, a
   * tombstone's value); KEY_NOT_JSON when a key field is named but the key is not JSON.
   */
  read(ref: FieldRef): unknown {
    switch (ref.source) {
      case 'topic':
        return this.topic;
      case 'partition':
        return this.partition;
      case 'headers':
        return headerText(this.headers?.[ref.steps[0]]);
      case 'value':
        return this.value === null ? undefined : readSteps(this.value, ref.steps);
      case 'key': {
        if (this.key === null) return undefined;
        if (ref.steps.length === 0) return this.key.toString('utf8');
        const key = this.jsonKey();
        return key === KEY_NOT_JSON ? key : readSteps(key, ref.steps);
      }
    }
  }

  private jsonKey(): JsonValue | typeof KEY_NOT_JSON {
    if (this.parsedKey === undefined) {
      try {
        this.parsedKey = this.readKey(parseExactJson(this.key!.toString('utf8')) as JsonValue);
      } catch {
        this.parsedKey = KEY_NOT_JSON;
      }
    }
    return this.parsedKey;
  }
}

function readSteps(from: JsonValue, steps: readonly string[]): unknown {
  let cur: JsonValue = from;
  for (const k of steps) {
    if (!isJsonObject(cur) || !Object.hasOwn(cur, k)) return undefined;
    cur = cur[k];
  }
  return cur;
}

function headerText(h: KafkaHeaders[string]): string | undefined {
  if (h === undefined) return undefined;
  const last = Array.isArray(h) ? h[h.length - 1] : (h as Buffer | string);
  if (last === undefined || last === null) return undefined;
  return typeof last === 'string' ? last : last.toString('utf8');
}

/**
 * Debezium change-event envelopes, as the JsonConverter writes them: `{before, after, source, op,
 * ts_ms, ...}`, wrapped in `{schema, payload}` when `schemas.enable=true` (the converter's default).
 *
 * Values are converted by their Connect schema in debezium-values.ts. Unchanged TOASTed columns
 * of an update arrive as the placeholder `__debezium_unavailable_value`; they keep their cached value.
 */
import { type JsonObject, type JsonValue, isJsonObject } from '../../core/json.ts';

/** Debezium's `unavailable.value.placeholder` default, for unchanged TOAST columns. */
export const DEBEZIUM_UNAVAILABLE_VALUE = '__debezium_unavailable_value';

export type DebeziumEvent =
  /** c (insert), r (snapshot read), u (update). `before` is the old row when the table has REPLICA IDENTITY FULL. */
  | { readonly op: 'c' | 'r' | 'u'; readonly after: JsonObject; readonly before: JsonObject | null }
  /** d (delete): `before` holds the key columns, or the whole old row with REPLICA IDENTITY FULL. */
  | { readonly op: 'd'; readonly before: JsonObject | null }
  /** t (truncate) of the table. */
  | { readonly op: 't' }
  /** m (a logical decoding message): carries no row. */
  | { readonly op: 'm' };

/**
 * Removes the JsonConverter's `{schema, payload}` wrapper when present: an object with exactly
 * those two fields whose schema is an object. Anything else is returned as is.
 */
export function unwrapConnectJson(value: JsonValue): JsonValue {
  return connectSchema(value) === undefined ? value : ((value as JsonObject).payload ?? null);
}

/** The schema of a JsonConverter `{schema, payload}` wrapper, or undefined when `value` is not one. */
export function connectSchema(value: JsonValue): JsonObject | undefined {
  if (!isJsonObject(value)) return undefined;
  let n = 0;
  for (const _ in value) if (++n > 2) return undefined;
  const schema = value.schema ?? null;
  return n === 2 && Object.hasOwn(value, 'payload') && isJsonObject(schema) ? schema : undefined;
}

/** Reads a parsed (and unwrapped) envelope; returns a string saying what is wrong when it is not one. */
export function readDebeziumEvent(envelope: JsonValue): DebeziumEvent | string {
  if (!isJsonObject(envelope)) return 'the value is not a Debezium envelope (an object with op, before, after)';
  const op = envelope.op;
  const before = envelope.before ?? null;
  if (before !== null && !isJsonObject(before)) return '"before" is neither an object nor null';
  switch (op) {
    case 'c':
    case 'r':
    case 'u': {
      const after = envelope.after ?? null;
      if (!isJsonObject(after)) return `op "${op}" without an "after" object`;
      return { op, after, before };
    }
    case 'd':
      return { op, before };
    case 't':
    case 'm':
      return { op };
    default:
      return typeof op === 'string' ? `unknown op "${op}"` : 'no "op" field: is this topic really in Debezium format?';
  }
}

/** Top-level fields of `row` holding the TOAST placeholder, or undefined when there are none. */
export function unavailableFields(row: JsonObject): string[] | undefined {
  let out: string[] | undefined;
  for (const k in row) if (row[k] === DEBEZIUM_UNAVAILABLE_VALUE) (out ??= []).push(k);
  return out;
}

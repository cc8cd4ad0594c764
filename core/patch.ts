/**
 * A JSON Patch operation as tidewire sends it (RFC 6902: the three operations a delta uses).
 * Types only, apart from the diff that makes them (delta.ts, json-diff-ts inside), so the wire
 * message types and the browser client can name them without pulling in the server's diff.
 */
import type { JsonValue } from './json.ts';

export type PatchOp =
  | { op: 'add'; path: string; value: JsonValue }
  | { op: 'replace'; path: string; value: JsonValue }
  | { op: 'remove'; path: string };

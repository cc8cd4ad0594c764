/**
 * Parses and validates client frames against schemas/protocol, and builds the server's control
 * messages as JSON text. Validation dispatches on `type` first so an error names the one field
 * that is wrong instead of listing every branch of the union.
 */
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import authSchema from '../../schemas/protocol/auth.schema.json' with { type: 'json' };
import idSchema from '../../schemas/protocol/id.schema.json' with { type: 'json' };
import pingSchema from '../../schemas/protocol/ping.schema.json' with { type: 'json' };
import resumeSchema from '../../schemas/protocol/resume.schema.json' with { type: 'json' };
import subscribeSchema from '../../schemas/protocol/subscribe.schema.json' with { type: 'json' };
import topicPathSchema from '../../schemas/protocol/topic-path.schema.json' with { type: 'json' };
import unsubscribeSchema from '../../schemas/protocol/unsubscribe.schema.json' with { type: 'json' };
import { errorMessage } from '../../core/errors.ts';
import { filterProblem } from '../../core/filter.ts';
import { SelectorError, parseSelector } from '../../core/selector.ts';
import { truncate } from '../../core/path.ts';
import {
  CLIENT_MESSAGE_TYPES,
  type ClientMessage,
  type ClientMessageType,
  type ErrorCode,
  PROTOCOL_VERSION,
  type ResumeKind,
  type TenantLimitName,
} from '../../core/messages.ts';

/** Why a client frame was refused; becomes an `error` message. */
export interface ProtocolError {
  readonly code: ErrorCode;
  readonly message: string;
  /** The request's id, when the frame had a usable one. */
  readonly id?: string;
  /** With TENANT_LIMIT: which limit. */
  readonly limit?: TenantLimitName;
}

export type ParseResult = { ok: true; message: ClientMessage } | { ok: false; error: ProtocolError };

// ajv is CommonJS; its default export arrives wrapped under ESM.
const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const ajv = new Ajv({ allErrors: false, strict: true });
ajv.addSchema(idSchema);
ajv.addSchema(topicPathSchema);
ajv.addSchema(resumeSchema);
const validators: Record<ClientMessageType, ValidateFunction> = {
  subscribe: ajv.compile(subscribeSchema),
  unsubscribe: ajv.compile(unsubscribeSchema),
  ping: ajv.compile(pingSchema),
  auth: ajv.compile(authSchema),
};
const TYPE_LIST = CLIENT_MESSAGE_TYPES.join(', ');

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(code: ErrorCode, message: string, id?: string): ParseResult {
  return { ok: false, error: id === undefined ? { code, message } : { code, message, id } };
}

/** Parses one client text frame. Never throws: every bad input becomes a ProtocolError. */
export function parseClientMessage(text: string): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return fail('BAD_JSON', `the frame is not valid JSON (${errorMessage(err)}): send one JSON object per text frame`);
  }
  if (!isRecord(raw)) {
    return fail('INVALID_MESSAGE', `a message must be a JSON object with a "type" field (one of ${TYPE_LIST}), not ${describe(raw)}`);
  }
  const id = typeof raw.id === 'string' && raw.id.length >= 1 && raw.id.length <= 64 ? raw.id : undefined;
  const type = raw.type;
  if (typeof type !== 'string') {
    return fail('INVALID_MESSAGE', `field "type" is required and must be a string: one of ${TYPE_LIST}`, id);
  }
  if (!Object.hasOwn(validators, type)) {
    return fail('UNKNOWN_TYPE', `unknown message type "${truncate(type)}": use one of ${TYPE_LIST}`, id);
  }
  const validate = validators[type as ClientMessageType];
  if (!validate(raw)) return schemaFailure(type, raw, validate.errors ?? [], id);
  return { ok: true, message: raw as unknown as ClientMessage };
}

function schemaFailure(type: string, raw: Record<string, unknown>, errors: ErrorObject[], id: string | undefined): ParseResult {
  const e = errors[0];
  if (!e) return fail('INVALID_MESSAGE', `the ${type} message does not match its schema`, id);
  if (e.instancePath === '/selector' && typeof raw.selector === 'string') {
    // Length limits live in the schema; the selector grammar's own wording is the clearer message.
    return fail('INVALID_SELECTOR', selectorProblem(raw.selector), id);
  }
  if (e.instancePath === '/filter' && typeof raw.filter === 'string') {
    return fail('FILTER_INVALID', filterProblem(raw.filter)?.message ?? 'the filter is not valid', id);
  }
  const field = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      return fail('INVALID_MESSAGE', `field "${truncate(extra)}" is not part of a ${type} message: remove it (see schemas/protocol/${type}.schema.json)`, id);
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return fail('INVALID_MESSAGE', `field "${missing}" is required in a ${type} message`, id);
    }
    case 'type':
      return fail('INVALID_MESSAGE', `field "${field}" must be a ${(e.params as { type: string }).type}`, id);
    case 'minLength':
    case 'maxLength':
      if (field === 'id') return fail('INVALID_MESSAGE', 'field "id" must be a string of 1 to 64 characters', id);
  }
  return fail('INVALID_MESSAGE', `field "${field || '(message)'}" ${e.message ?? 'is invalid'}`, id);
}

/** The reason a selector is refused, in the selector grammar's own words. */
export function selectorProblem(selector: string): string {
  try {
    parseSelector(selector);
  } catch (err) {
    if (err instanceof SelectorError) return err.message;
    throw err;
  }
  return `selector "${truncate(selector)}" is not valid`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

// Server → client control messages, built as text once: they go straight into a session's queue.

export function helloMessage(epoch: string, maxPayloadBytes?: number): string {
  const limits = maxPayloadBytes === undefined ? '' : `,"maxPayloadBytes":${maxPayloadBytes}`;
  return `{"type":"hello","protocol":${PROTOCOL_VERSION},"epoch":${JSON.stringify(epoch)},"server":"tidewire"${limits}}`;
}

export function subscribedMessage(id: string, selector: string, topics: number, resumed?: ResumeKind): string {
  const tail = resumed === undefined ? '' : `,"resumed":"${resumed}"`;
  return `{"type":"subscribed","id":${JSON.stringify(id)},"selector":${JSON.stringify(selector)},"topics":${topics}${tail}}`;
}

/** A subscription's answer is going out in pages: `sent` of `total` topics so far; `subscribed` follows the last page. */
export function loadingMessage(id: string, sent: number, total: number): string {
  return `{"type":"loading","id":${JSON.stringify(id)},"sent":${sent},"total":${total}}`;
}

export function unsubscribedMessage(id: string): string {
  return `{"type":"unsubscribed","id":${JSON.stringify(id)}}`;
}

export function pongMessage(id: string | undefined): string {
  return id === undefined ? '{"type":"pong"}' : `{"type":"pong","id":${JSON.stringify(id)}}`;
}

export function protocolErrorMessage(error: ProtocolError): string {
  let text = `{"type":"error","code":"${error.code}","message":${JSON.stringify(error.message)}`;
  if (error.id !== undefined) text += `,"id":${JSON.stringify(error.id)}`;
  if (error.limit !== undefined) text += `,"limit":"${error.limit}"`;
  return `${text}}`;
}

/** `exp` in seconds since the epoch, as in the token; null for a token without one. */
export function authenticatedMessage(id: string | undefined, exp: number | null): string {
  const head = id === undefined ? '{"type":"authenticated"' : `{"type":"authenticated","id":${JSON.stringify(id)}`;
  return `${head},"exp":${exp === null ? 'null' : Math.floor(exp)}}`;
}

/** A subscription's feed went stale (`stale: true`) or is live again; `sources` only where the session may see feed names (security off). */
export function statusMessage(id: string, stale: boolean, sources?: readonly string[]): string {
  const tail = sources === undefined ? '' : `,"sources":${JSON.stringify(sources)}`;
  return `{"type":"status","id":${JSON.stringify(id)},"stale":${stale}${tail}}`;
}

/** Opens part `part` of `parts` frames of one group (docs/PROTOCOL.md, "Transactions"). */
export function txnMessage(seq: number, part: number, parts: number): string {
  return `{"type":"txn","seq":${seq},"part":${part},"parts":${parts}}`;
}

/** The client holds the state after batch `seq` once it applied the frame this ends (docs/PROTOCOL.md, "Resuming"). */
export function positionMessage(seq: number, access?: string): string {
  return access === undefined ? `{"type":"position","seq":${seq}}` : `{"type":"position","seq":${seq},"access":${JSON.stringify(access)}}`;
}

/**
 * Maps one Kafka record onto topic updates, by the mapping configured for its topic: the path
 * from the template, the tenant, the value after include/exclude. JSON values become the topic
 * value; Debezium envelopes become an upsert of `after` or a removal of the path of `before`.
 *
 * A record that cannot be mapped is reported as `bad` with a reason, never thrown: the caller
 * counts it, dead-letters it and moves on.
 */
import type { KafkaTopicMapping } from './kafka-settings.ts';
import { ConfigError } from '../../core/errors.ts';
import { HeapRowIndex } from '../../core/heap-row-index.ts';
import type { RowIndex, RowWrite } from '../../core/ingest.ts';
import { type JsonObject, type JsonValue, isJsonObject } from '../../core/json.ts';
import { MAX_PATH_LENGTH } from '../../core/path.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import { PathTemplate } from '../mapping/path-template.ts';
import { type DebeziumEvent, connectSchema, readDebeziumEvent, unavailableFields, unwrapConnectJson } from './debezium-envelope.ts';
import { DEBEZIUM_VALUES, DebeziumValueError, type DebeziumValues, envelopeFieldSchema, rowConverter } from './debezium-values.ts';
import { parseExactJson } from './exact-json.ts';
import type { KafkaMessage } from './kafka-client.ts';
import { type FieldRef, KEY_NOT_JSON, RecordFields, parseFieldRef } from './record-fields.ts';

export const BAD_RECORD_REASONS = ['invalid-json', 'not-an-object', 'missing-field', 'too-large', 'invalid-envelope', 'invalid-path'] as const;
export type BadRecordReason = (typeof BAD_RECORD_REASONS)[number];

/** Records deliberately left without effect. */
export type IgnoredReason =
  /**
   * A Debezium tombstone with nothing to remove: its path needs value fields and its key has no
   * remembered path (the delete event before it removed the topic, or the key was never seen).
   * A tombstone whose path renders is a removal instead (a no-op after the delete).
   */
  | 'tombstone'
  /** A JSON-format tombstone whose path needs value fields, for a key this process has not seen. */
  | 'unmappable-tombstone'
  /** A Debezium logical decoding message (op m). */
  | 'message';

export type MappedRecord =
  | { readonly kind: 'updates'; readonly updates: readonly TopicUpdate[] }
  /** Remove every topic of `source` (a Debezium truncate). */
  | { readonly kind: 'truncate'; readonly source: string }
  | { readonly kind: 'ignored'; readonly why: IgnoredReason }
  | { readonly kind: 'bad'; readonly reason: BadRecordReason; readonly detail: string };

/**
 * The `TopicUpdate.source` of every topic a Kafka topic produces.
 * @example kafkaSourceName('prices') === 'kafka:prices'
 */
export function kafkaSourceName(topic: string): string {
  return `kafka:${topic}`;
}

export class RecordMapper {
  readonly format: 'json' | 'debezium';
  /** For Debezium: convert values by their Connect schema to the Postgres connector's, or pass them through. */
  readonly values: DebeziumValues;
  /** Whether the path names value fields, which tombstones lack. */
  readonly pathUsesValue: boolean;
  private readonly topicName: string | undefined;
  private readonly pattern: RegExp | undefined;
  private readonly template: PathTemplate;
  private readonly refs = new Map<string, FieldRef>();
  private readonly tenant: string | undefined;
  private readonly tenantRef: FieldRef | undefined;
  private readonly include: readonly string[] | undefined;
  private readonly exclude: ReadonlySet<string> | undefined;
  private readonly sources = new Map<string, string>();
  /**
   * For records whose path uses value fields, per Kafka topic: the path each key was last mapped
   * to (core/ingest.ts, RowIndex; row key: the record key's bytes as latin1 text), so a tombstone
   * (which has no value) still removes its topic, and a key whose value moves it to another path
   * does not leave the old topic behind. One entry per live key; with durable state, stored with
   * the state (a restart resumes with it), else on the heap.
   */
  private readonly indexes: Map<string, RowIndex> | null;
  /** Row index writes made since the last `takeRowWrites`: they go to the sink with the updates. */
  private rowWrites: RowWrite[] = [];
  private readonly readKey: (parsed: JsonValue) => JsonValue;

  /**
   * Validates the mapping; throws ConfigError naming `kafka.topics.<index>.<setting>`.
   * @example new RecordMapper({ topic: 'prices', format: 'json', path: 'prices/{value.venue}/{key}' }, 0, { maxValueBytes: 1 << 20 })
   */
  constructor(
    spec: KafkaTopicMapping,
    index: number,
    private readonly options: {
      maxValueBytes: number;
      /** The stored row index of a source (SourceCheckpoints.rowIndex); absent or null: one on the heap. */
      rowIndex?: (source: string) => RowIndex | null;
    },
  ) {
    const key = `kafka.topics.${index}`;
    if ((spec.topic === undefined) === (spec.pattern === undefined)) throw new ConfigError(key, 'set exactly one of topic and pattern');
    this.topicName = spec.topic;
    if (spec.pattern !== undefined) {
      try {
        this.pattern = new RegExp(spec.pattern);
      } catch (err) {
        throw new ConfigError(`${key}.pattern`, `is not a valid regular expression: ${(err as Error).message}`, { cause: err });
      }
    }
    if (spec.format !== 'json' && spec.format !== 'debezium') throw new ConfigError(`${key}.format`, 'must be json or debezium');
    this.format = spec.format;
    if (spec.values !== undefined) {
      if (spec.format !== 'debezium') throw new ConfigError(`${key}.values`, 'applies to format: debezium only');
      if (!DEBEZIUM_VALUES.includes(spec.values)) throw new ConfigError(`${key}.values`, `must be ${DEBEZIUM_VALUES.join(' or ')}`);
    }
    this.values = spec.values ?? 'postgres';
    this.readKey = this.format === 'debezium' && this.values === 'postgres' ? readDebeziumKey : unwrapConnectJson;
    this.template = new PathTemplate(spec.path, `${key}.path`);
    for (const f of this.template.fields) this.refs.set(f, fieldRef(f, `${key}.path`));
    this.pathUsesValue = [...this.refs.values()].some((r) => r.source === 'value');
    if (spec.tenant !== undefined && spec.tenantField !== undefined) throw new ConfigError(`${key}.tenantField`, 'set tenant or tenantField, not both');
    if (spec.tenant !== undefined && (typeof spec.tenant !== 'string' || spec.tenant === '')) throw new ConfigError(`${key}.tenant`, 'must be a non-empty string');
    this.tenant = spec.tenant;
    this.tenantRef = spec.tenantField === undefined ? undefined : fieldRef(spec.tenantField, `${key}.tenantField`);
    this.include = spec.include && [...spec.include];
    this.exclude = spec.exclude && spec.exclude.length > 0 ? new Set(spec.exclude) : undefined;
    this.indexes = this.pathUsesValue ? new Map() : null;
  }

  /** The row index of Kafka topic `topic`, or null when its paths need none (they name no value field). */
  rowIndex(topic: string): RowIndex | null {
    if (this.indexes === null) return null;
    let index = this.indexes.get(topic);
    if (index === undefined) this.indexes.set(topic, (index = this.options.rowIndex?.(this.sourceOf(topic)) ?? new HeapRowIndex()));
    return index;
  }

  /** The row index writes made since the last call, to hand to the sink with their updates. */
  takeRowWrites(): RowWrite[] | undefined {
    if (this.rowWrites.length === 0) return undefined;
    const w = this.rowWrites;
    this.rowWrites = [];
    return w;
  }

  /**
   * `topic` is read from its earliest offset to rebuild its state (a re-read): its row index starts
   * over, and is complete once the read is applied (`readApplied`).
   */
  startRead(topic: string): void {
    this.rowIndex(topic)?.clear(false);
  }

  /** The read begun by `startRead` is applied: the row index of `topic` is complete. */
  readApplied(topic: string): void {
    const index = this.rowIndex(topic);
    if (index !== null && !index.complete) index.completed();
  }

  /**
   * `topic` starts with no topic of it in the state: its row index holds nothing either (entries
   * of an earlier consumer of the same topic are dropped), and is complete.
   */
  startFresh(topic: string): void {
    this.rowIndex(topic)?.clear(true);
  }

  /**
   * A truncate of `topic` was applied (its topics removed): its row index forgets every key.
   * Called after the updates mapped before it were handed on with their row writes.
   */
  truncated(topic: string): void {
    const index = this.rowIndex(topic);
    if (index !== null) index.clear(index.complete);
  }

  matches(topic: string): boolean {
    return this.topicName !== undefined ? topic === this.topicName : this.pattern!.test(topic);
  }

  map(topic: string, partition: number, message: KafkaMessage): MappedRecord {
    const source = this.sourceOf(topic);
    const fields = new RecordFields(topic, partition, message.key, message.headers, null, this.readKey);
    if (message.value === null) return this.tombstone(fields, source, topic, message.key);
    if (message.value.length > this.options.maxValueBytes) {
      return bad('too-large', `the value has ${message.value.length} bytes, over kafka.maxValueBytes (${this.options.maxValueBytes})`);
    }
    let parsed: JsonValue;
    try {
      parsed = parseExactJson(message.value.toString('utf8')) as JsonValue;
    } catch (err) {
      return bad('invalid-json', `the value is not JSON: ${(err as Error).message}`);
    }
    const schema = connectSchema(parsed);
    if (schema !== undefined) parsed = (parsed as JsonObject).payload ?? null;
    if (parsed === null) return this.tombstone(fields, source, topic, message.key); // a wrapped null payload
    if (this.format === 'json') {
      if (!isJsonObject(parsed)) return bad('not-an-object', `the value is ${Array.isArray(parsed) ? 'an array' : typeof parsed}, not a JSON object`);
      fields.value = parsed;
      return this.upsertByKey(topic, message.key, fields, source, parsed, undefined, null);
    }
    let event = readDebeziumEvent(parsed);
    if (typeof event === 'string') return bad('invalid-envelope', event);
    if (schema !== undefined && this.values === 'postgres') {
      try {
        event = toPostgresValues(event, schema);
      } catch (err) {
        if (!(err instanceof DebeziumValueError)) throw err;
        return bad('invalid-envelope', `a value does not match its Connect schema: ${err.message}`);
      }
    }
    switch (event.op) {
      case 'c':
      case 'r':
      case 'u': {
        fields.value = event.after;
        let oldPath: string | null = null;
        if (event.before) {
          // REPLICA IDENTITY FULL: the old row may have had another path (a path column changed).
          const old = this.render(new RecordFields(topic, partition, message.key, message.headers, event.before, this.readKey));
          if (typeof old === 'string') oldPath = old;
        }
        return this.upsertByKey(topic, message.key, fields, source, event.after, event.op === 'u' ? unavailableFields(event.after) : undefined, oldPath);
      }
      case 'd': {
        fields.value = event.before;
        const index = this.indexOf(topic, message.key);
        if (index !== null) this.forget(index, message.key!.toString('latin1'));
        const path = this.render(fields);
        if (typeof path !== 'string') return path;
        return { kind: 'updates', updates: [{ path, source, value: null }] };
      }
      case 't':
        return { kind: 'truncate', source };
      case 'm':
        return { kind: 'ignored', why: 'message' };
    }
  }

  /**
   * An upsert of the record with Kafka key `key`: its old path is `before` (rendered from the old
   * row) or else its key's entry in the row index, which then points at the new path.
   */
  private upsertByKey(topic: string, key: Buffer | null, fields: RecordFields, source: string, row: JsonObject, keep: string[] | undefined, before: string | null): MappedRecord {
    const index = this.indexOf(topic, key);
    const rowKey = index === null ? '' : key!.toString('latin1');
    const known = index === null ? null : (index.get(rowKey) ?? null);
    return this.remember(index, rowKey, known, this.upsert(fields, source, row, keep, before ?? known));
  }

  private upsert(fields: RecordFields, source: string, row: JsonObject, keep: string[] | undefined, oldPath: string | null): MappedRecord {
    const path = this.render(fields);
    if (typeof path !== 'string') return path;
    let tenant: string | undefined = this.tenant;
    if (this.tenantRef) {
      const t = fields.read(this.tenantRef);
      if (typeof t === 'number' || (typeof t === 'string' && t !== '')) tenant = String(t);
      else if (t === KEY_NOT_JSON) return bad('invalid-json', `tenantField {${this.tenantRef.text}} names a key field, but the key is not JSON`);
      else return bad('missing-field', `tenantField ${this.tenantRef.text} is ${t === undefined ? 'missing' : 'not a string or number'}`);
    }
    let value = this.project(row);
    if (keep) {
      if (value === row) value = { ...row };
      for (const k of keep) delete value[k];
    }
    const update: TopicUpdate = { path, source, value };
    if (tenant !== undefined) update.tenant = tenant;
    if (keep) update.keep = keep;
    if (oldPath !== null && oldPath !== path) return { kind: 'updates', updates: [{ path: oldPath, source, value: null }, update] };
    return { kind: 'updates', updates: [update] };
  }

  /** The row index a record of `topic` with `key` uses, or null when the path needs none (or the key is null). */
  private indexOf(topic: string, key: Buffer | null): RowIndex | null {
    return this.indexes === null || key === null ? null : this.rowIndex(topic);
  }

  /** Points `rowKey` at the path `mapped` leaves it at, when that is not `known` (the index's entry). */
  private remember(index: RowIndex | null, rowKey: string, known: string | null, mapped: MappedRecord): MappedRecord {
    if (index !== null && mapped.kind === 'updates') {
      const path = mapped.updates[mapped.updates.length - 1].path;
      if (path !== known) this.write(index, rowKey, path);
    }
    return mapped;
  }

  private forget(index: RowIndex, rowKey: string): void {
    if (index.get(rowKey) !== undefined) this.write(index, rowKey, null);
  }

  private write(index: RowIndex, rowKey: string, path: string | null): void {
    const w = index.set(rowKey, path);
    if (w !== undefined) this.rowWrites.push(w);
  }

  private tombstone(fields: RecordFields, source: string, topic: string, key: Buffer | null): MappedRecord {
    const index = this.indexOf(topic, key);
    if (index !== null) {
      const rowKey = key!.toString('latin1');
      const last = index.get(rowKey);
      if (last !== undefined) {
        this.write(index, rowKey, null);
        return { kind: 'updates', updates: [{ path: last, source, value: null }] };
      }
    }
    if (this.pathUsesValue) return { kind: 'ignored', why: this.format === 'debezium' ? 'tombstone' : 'unmappable-tombstone' };
    const path = this.render(fields);
    if (typeof path !== 'string') return path;
    // For Debezium the delete event before it removed the topic already: this removal is a no-op.
    return { kind: 'updates', updates: [{ path, source, value: null }] };
  }

  /** The path, or the bad-record outcome saying why there is none. */
  private render(fields: RecordFields): string | Extract<MappedRecord, { kind: 'bad' }> {
    let keyNotJson = false;
    const path = this.template.render((f) => {
      const v = fields.read(this.refs.get(f)!);
      if (v === KEY_NOT_JSON) {
        keyNotJson = true;
        return undefined;
      }
      return v;
    });
    if (typeof path !== 'string') {
      if (keyNotJson) return bad('invalid-json', `{${path.missing}} names a key field, but the key is not JSON`);
      return bad('missing-field', `the record has no ${path.missing} for {${path.missing}} in ${this.template.text}`);
    }
    if (path.length > MAX_PATH_LENGTH) return bad('invalid-path', `the path would have ${path.length} characters, over ${MAX_PATH_LENGTH}`);
    return path;
  }

  private project(row: JsonObject): JsonObject {
    let value = row;
    if (this.include) {
      value = {};
      for (const k of this.include) if (Object.hasOwn(row, k)) value[k] = row[k];
    }
    if (this.exclude) {
      const out: JsonObject = {};
      for (const k in value) if (!this.exclude.has(k)) out[k] = value[k];
      value = out;
    }
    return value;
  }

  private sourceOf(topic: string): string {
    let s = this.sources.get(topic);
    if (s === undefined) this.sources.set(topic, (s = kafkaSourceName(topic)));
    return s;
  }
}

/** The first mapping matching each topic, remembered per topic name. */
export class TopicMappings {
  private readonly byTopic = new Map<string, RecordMapper | null>();

  constructor(readonly mappers: readonly RecordMapper[]) {}

  forTopic(topic: string): RecordMapper | undefined {
    let m = this.byTopic.get(topic);
    if (m === undefined) this.byTopic.set(topic, (m = this.mappers.find((x) => x.matches(topic)) ?? null));
    return m ?? undefined;
  }
}

/** The row images of a Debezium event with values as tidewire's Postgres connector gives them. */
function toPostgresValues(event: DebeziumEvent, schema: JsonObject): DebeziumEvent {
  if (event.op === 't' || event.op === 'm') return event;
  const before = event.before && rowConverter(envelopeFieldSchema(schema, 'before'));
  if (event.op === 'd') return before ? { op: 'd', before: before(event.before!) } : event;
  const after = rowConverter(envelopeFieldSchema(schema, 'after'));
  if (!after && !before) return event;
  return { op: event.op, after: after ? after(event.after) : event.after, before: before ? before(event.before!) : event.before };
}

/** A Debezium key with its fields converted like the row's (a numeric or uuid primary key names the same path). */
function readDebeziumKey(parsed: JsonValue): JsonValue {
  const payload = unwrapConnectJson(parsed);
  const convert = isJsonObject(payload) ? rowConverter(connectSchema(parsed)) : null;
  if (!convert) return payload;
  try {
    return convert(payload as JsonObject);
  } catch (err) {
    if (err instanceof DebeziumValueError) return payload; // the path then shows Debezium's own encoding
    throw err;
  }
}

function fieldRef(text: string, key: string): FieldRef {
  const ref = parseFieldRef(text);
  if (typeof ref === 'string') throw new ConfigError(key, `{${text}}: ${ref}`);
  return ref;
}

function bad(reason: BadRecordReason, detail: string): Extract<MappedRecord, { kind: 'bad' }> {
  return { kind: 'bad', reason, detail };
}

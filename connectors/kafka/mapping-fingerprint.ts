/**
 * A fingerprint of what the topics of one Kafka topic depend on: the mapping its records use and
 * the settings that decide which records map at all. Stored with durable state under the source
 * name (`kafka:<topic>`); a Kafka topic whose fingerprint changed while tidewire was stopped is
 * re-read (diffed against the state), the others resume from their stored offsets.
 */
import { createHash } from 'node:crypto';
import type { KafkaTopicMapping } from './kafka-settings.ts';

/** Bump when what a mapping produces changes for the same settings (a mapper fix, a new default). */
const FINGERPRINT_VERSION = 'k1';

/**
 * @example kafkaMappingFingerprint({ topic: 'prices', format: 'json', path: 'prices/{key}' }, 1048576) // 'k1:3f…' (32 hex digits)
 */
export function kafkaMappingFingerprint(mapping: KafkaTopicMapping, maxValueBytes: number): string {
  // Only what decides the topics: a heartbeat topic changes no value.
  const { heartbeatTopic: _hb, ...decides } = mapping;
  const basis = JSON.stringify({ mapping: sortedKeys(decides), maxValueBytes });
  return `${FINGERPRINT_VERSION}:${createHash('sha256').update(basis).digest('hex').slice(0, 32)}`;
}

/** The same mapping written with its keys in another order has the same fingerprint. */
function sortedKeys(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) {
    const v = (o as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

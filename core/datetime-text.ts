/**
 * The one text form of dates and times in topic values, whichever connector read them (the
 * Postgres connector's pgoutput-values.ts, the Kafka connector's debezium-values.ts): RFC 3339,
 * so `new Date(text)` in any JavaScript parses it. README "Values" lists every type.
 *
 * - An instant (timestamptz) ends in `Z` (tidewire reads Postgres with TimeZone=UTC, and
 *   Debezium's ZonedTimestamp is UTC); any other offset is `+HH:MM`. A local date-time
 *   (timestamp without time zone) has no offset, because it has none.
 * - Years 0000–9999 have four digits; years outside them the ISO 8601 expanded form that
 *   ECMAScript's Date parses: a sign and six digits (`-000043-03-15`, `+010000-01-01`).
 */

/** The offset of UTC. */
export const UTC_OFFSET = 'Z';

/**
 * An astronomical year (1 BC is 0, 2 BC is -1) as an ISO 8601 year.
 * @example isoYear(2026) // '2026'; isoYear(-43) // '-000043' (44 BC); isoYear(10000) // '+010000'
 */
export function isoYear(year: number): string {
  if (year >= 0 && year <= 9999) return String(year).padStart(4, '0');
  return `${year < 0 ? '-' : '+'}${String(Math.abs(year)).padStart(6, '0')}`;
}

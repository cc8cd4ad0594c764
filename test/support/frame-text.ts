/**
 * The text of one frame: a JSON array of `prefix` (if any) and the messages items[start, end).
 * What the server's frameBuffer (services/distribution/session-queue.ts) writes as UTF-8; the
 * tests read frames through it.
 */
export function frameText(items: readonly string[], start = 0, end = items.length, prefix: string | null = null): string {
  const body = items.slice(start, end).join(',');
  return prefix === null ? `[${body}]` : `[${prefix},${body}]`;
}

/**
 * The `resume` part of a re-subscribe: the versions a subscription holds, so the server sends only
 * what changed. The whole subscribe message must fit the server's maxPayloadBytes (announced in
 * `hello`), so paths are listed until the budget is spent; those left out are simply not held as
 * far as the server knows, and come back as values (which the client does not report again when
 * they did not change).
 */
import type { ResumeState } from '../core/messages.ts';
import type { TopicCache } from './subscription.ts';

/** Used when the server does not announce its limit (older servers): far under its default of 64 KiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024;

/** Topics applied after the last position that a subscription keeps track of; past it, it resumes by versions. */
export const MAX_MOVED = 4096;

/** Room kept in every subscribe message for what JSON.stringify may add (escapes in the id, rounding). */
const MARGIN = 64;

export interface ResumePlan {
  readonly resume: ResumeState;
  /** The paths listed in `resume.versions`. */
  readonly listed: Set<string>;
  /** Some held paths did not fit. */
  readonly truncated: boolean;
}

/**
 * Lists the held version of each path (known versions only: -1 marks a value that may be stale)
 * in at most `budget` bytes of the subscribe message, `messageBytes` of which are already used.
 */
export function planResume(epoch: string, paths: Iterable<string>, cache: TopicCache, messageBytes: number, maxPayloadBytes: number): ResumePlan {
  const versions: Record<string, number> = {};
  const listed = new Set<string>();
  // ,"resume":{"epoch":"…","versions":{}}
  let used = messageBytes + 35 + utf8Length(JSON.stringify(epoch)) + MARGIN;
  let truncated = false;
  for (const path of paths) {
    const entry = cache.get(path);
    if (!entry || entry.version < 1) continue;
    const cost = utf8Length(JSON.stringify(path)) + String(entry.version).length + 2;
    if (used + cost > maxPayloadBytes) {
      truncated = true;
      continue;
    }
    used += cost;
    // A path may be "__proto__": define it as an own property, never through the setter.
    Object.defineProperty(versions, path, { value: entry.version, enumerable: true, writable: true, configurable: true });
    listed.add(path);
  }
  return { resume: { epoch, versions }, listed, truncated };
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

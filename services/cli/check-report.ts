/**
 * The lines `tidewire check` prints: one per check, ✔ passed, ✘ failed (with what to do), ! a
 * warning that does not fail the run. The exit code is 0 only when nothing failed.
 */

export type CheckStatus = 'ok' | 'fail' | 'warn';

export interface CheckResult {
  readonly status: CheckStatus;
  /** What was checked, e.g. `wal_level` or `table public.orders`. */
  readonly name: string;
  /** What was found; for a failure, also what to do. */
  readonly detail: string;
}

export const ok = (name: string, detail: string): CheckResult => ({ status: 'ok', name, detail });
export const fail = (name: string, detail: string): CheckResult => ({ status: 'fail', name, detail });
export const warn = (name: string, detail: string): CheckResult => ({ status: 'warn', name, detail });

const MARK: Record<CheckStatus, string> = { ok: '✔', fail: '✘', warn: '!' };
const COLOR: Record<CheckStatus, string> = { ok: '\x1b[32m', fail: '\x1b[31m', warn: '\x1b[33m' };

export function formatCheck(r: CheckResult, color = false): string {
  const mark = color ? `${COLOR[r.status]}${MARK[r.status]}\x1b[0m` : MARK[r.status];
  return `${mark} ${r.name}: ${r.detail}`;
}

/** Prints each result as it comes and remembers whether any failed. */
export class CheckReport {
  failed = 0;
  constructor(private readonly out: NodeJS.WritableStream, private readonly color = false) {}

  add(r: CheckResult): CheckResult {
    if (r.status === 'fail') this.failed++;
    this.out.write(`${formatCheck(r, this.color)}\n`);
    return r;
  }

  /** A note that is not a check (checks skipped because an earlier one failed). */
  note(text: string): void {
    this.out.write(`  ${text}\n`);
  }
}

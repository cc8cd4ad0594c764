/**
 * Files that name the process owning something (a state dir, a data folder): who wrote it, and
 * whether that process still runs. Node only (not for the browser client).
 */
import { readFileSync } from 'node:fs';

/** Does process `pid` exist? (EPERM: it exists but belongs to another user.) */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid on the first line of `file`; null when there is no such file or no valid pid in it. */
export function readPidFile(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0]!, 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * One writer per state dir. LMDB lets several processes write one file, and two tidewire nodes
 * pointed at one state.dir would interleave their commits into a state neither had: the first to
 * open it owns it (`owner.pid`, created with O_EXCL), until it closes or its process is gone.
 */
import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../../core/pid-file.ts';
import { StateError } from './state-error.ts';

export const OWNER_FILE = 'owner.pid';
/** Dirs open in this process (lmdb-js shares one environment per path within a process). */
const openHere = new Set<string>();

function create(file: string): boolean {
  try {
    const fd = openSync(file, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Takes the dir, or throws `STATE_LOCKED`; returns the release function. */
export function claimDir(dir: string): () => void {
  if (openHere.has(dir)) throw new StateError('STATE_LOCKED', dir, `the state in ${dir} is already open in this process: open it once and share the store`);
  const file = join(dir, OWNER_FILE);
  if (!create(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new StateError(
        'STATE_LOCKED',
        dir,
        `the state in ${dir} is in use by process ${pid} (another tidewire?): stop it, or point state.dir elsewhere; if no tidewire uses it, delete ${file}`,
      );
    }
    // Left by a process that is gone (a crash): take it over.
    unlinkSync(file);
    if (!create(file)) throw new StateError('STATE_LOCKED', dir, `another process took the state in ${dir} at the same time: point state.dir elsewhere`);
  }
  openHere.add(dir);
  return () => {
    openHere.delete(dir);
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
    } catch {
      // Already gone: nothing to release.
    }
  };
}

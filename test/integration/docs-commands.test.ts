/**
 * Every command in README.md and docs/*.md is run by a test (issue 18, item 3). The shell commands
 * are taken from the fenced code blocks (```sh/```bash: every line; untyped blocks: lines that
 * start like a command, `npx tidewire …`, `npm …`, `curl …`), and each one is either run here, as
 * the docs write it (through /bin/sh, in a folder like the reader's, against a real demo or a real
 * Postgres; long-running ones until they print what the docs say they print), or listed in
 * ELSEWHERE with the file that runs it. A command in the docs that is neither makes the first test
 * fail, saying where to add it. The README's SDK program is run too, and the example line the
 * README shows for `watch` is compared with what the demo prints.
 *
 * Changes to what the reader types, so that tests can run side by side: a free port instead of
 * 8080 (`--port`/`--url` appended, as the CLI's help says), `postgres://…` and the example file's
 * database URL replaced by the harness's, npm kept offline (nothing is fetched from a registry).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DOC_FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

// --- extraction -------------------------------------------------------------------------------

export interface DocCommand {
  readonly file: string;
  readonly line: number;
  readonly command: string;
}

const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);
/** In an untyped block, a line that starts like a command (`tidewire: …` and `tidewire start: …` are output, not commands). */
const COMMAND_START = /^(?:\$ )?(?:npx|npm|tidewire|curl|docker|node|bash|git)(?:\s+(?!\S*:(?:\s|$))|$)/;

/** The shell commands of one Markdown file's fenced code blocks, `a && b` as two. */
export function extractCommands(markdown: string, file: string): DocCommand[] {
  const out: DocCommand[] = [];
  const lines = markdown.split('\n');
  let fence: { marker: string; shell: boolean; untyped: boolean } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const open = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (fence === null) {
      if (open) fence = { marker: open[1], shell: SHELL_LANGUAGES.has(open[2].toLowerCase()), untyped: open[2] === '' };
      continue;
    }
    if (line.trim().startsWith(fence.marker) && line.trim().replace(/[`~]/g, '') === '') {
      fence = null;
      continue;
    }
    let text = line.trim();
    const at = i + 1;
    // A continued line (`\` at the end) is one command with the next.
    while (text.endsWith('\\') && i + 1 < lines.length) text = `${text.slice(0, -1).trimEnd()} ${lines[++i].trim()}`;
    if (text === '' || text.startsWith('#')) continue;
    if (!fence.shell && !(fence.untyped && COMMAND_START.test(text))) continue;
    text = text.replace(/^\$ /, '').replace(/\s+#\s.*$/, '');
    for (const part of text.split(/\s+&&\s+/)) out.push({ file, line: at, command: part.trim() });
  }
  return out;
}

// --- what runs each command --------------------------------------------------------------------

/** Commands this file runs, each by the test named. */
const RUN_HERE: Record<string, string> = {
  'npm start': 'the demo',
  "npx tidewire watch 'orders/**'": 'the demo',
  'npx tidewire check --config tidewire.yaml': 'against your database',
  'npx tidewire start --config tidewire.yaml': 'against your database',
  'npx tidewire slots --config tidewire.yaml': 'against your database',
  'npx tidewire slots --url postgres://… --drop tidewire_old': 'against your database',
  'npx tidewire start --config examples/orders.yaml': 'against your database',
};

/** Commands run by another file, with what in that file shows it runs them (checked, so the claim cannot go stale). */
const ELSEWHERE: Array<{ match: string | RegExp; by: string; evidence: RegExp; why: string; standing?: true }> = [
  { match: 'npm install', by: '.ci/run', evidence: /^npm ci\b/m, why: 'CI installs the checkout from its lockfile (npm ci) before every other step' },
  { match: 'npm test', by: '.ci/run', evidence: /^npm test$/m, why: 'the whole suite, this file included: CI runs it last' },
  {
    match: 'npm install @tidewire/client',
    by: 'test/integration/packages.test.ts',
    evidence: /'install',[^\n]*tarballs\.client/,
    why: 'installs the packed @tidewire/client into a fresh project outside the repository (the registry is not published to from tests)',
  },
  {
    match: 'npm install tidewire',
    by: 'test/integration/packages.test.ts',
    evidence: /'install',[^\n]*tarballs\.server/,
    why: 'installs the packed tidewire into a fresh project outside the repository and runs check, start and the demo there',
  },
  {
    match: 'docker compose up --build',
    by: 'test/unit/compose.test.ts',
    evidence: /docker-compose\.yml/,
    why: 'CI has no Docker engine: the Compose file and the Dockerfile are checked without one (Compose schema, dclint, pinned images, the config parses, the ports)',
  },
  // A rule kept whether or not a fenced block shows a bench run today (docs/BENCHMARKS.md names them in its text).
  {
    match: /^npm run bench( -- .*)?$/,
    by: '.ci/run',
    evidence: /^\s*npm run bench -- --quick$/m,
    why: "CI's benchmark smoke run, every suite at its smallest size (a full run takes too long for the suite)",
    standing: true,
  },
];

function coverOf(command: string): { here: string } | { elsewhere: (typeof ELSEWHERE)[number] } | null {
  if (Object.hasOwn(RUN_HERE, command)) return { here: RUN_HERE[command] };
  const e = ELSEWHERE.find((x) => (typeof x.match === 'string' ? x.match === command : x.match.test(command)));
  return e ? { elsewhere: e } : null;
}

function allDocCommands(): DocCommand[] {
  return DOC_FILES.flatMap((f) => extractCommands(readFileSync(join(ROOT, f), 'utf8'), f));
}

/** What this file has run, by the docs' text. */
const ran = new Set<string>();

describe('extraction', () => {
  test('sh blocks give every line, untyped blocks the lines that start like a command, other languages none', () => {
    const md = [
      '```sh',
      'npm install && npm start     # the demo',
      '# a comment',
      '',
      'npx tidewire slots \\',
      '  --all',
      '```',
      '```',
      'tidewire: postgres.url: is not valid',
      'tidewire start: could not start; exiting with code 1',
      'npx tidewire check --config a.yaml',
      '✔ config: a.yaml is valid',
      '```',
      '```yaml',
      'npm: not a command in YAML',
      '```',
      '```text',
      'delta    orders/1/1 v2 [] (1 B, full value 2 B)',
      '```',
      '```bash',
      '$ curl -s http://127.0.0.1:8080/health',
      '```',
    ].join('\n');
    assert.deepEqual(
      extractCommands(md, 'x.md').map((c) => [c.line, c.command]),
      [
        [2, 'npm install'],
        [2, 'npm start'],
        [5, 'npx tidewire slots --all'],
        [11, 'npx tidewire check --config a.yaml'],
        [21, 'curl -s http://127.0.0.1:8080/health'],
      ],
    );
  });
});

test('every command in README.md and docs/*.md is run by a test', () => {
  const commands = allDocCommands();
  assert.ok(commands.length >= 8, `found only ${commands.length} commands: is the extraction broken?`);
  const missing = commands.filter((c) => coverOf(c.command) === null);
  assert.deepEqual(
    missing.map((c) => `${c.file}:${c.line}: \`${c.command}\``),
    [],
    'no test runs these commands from the docs: run each in test/integration/docs-commands.test.ts (RUN_HERE and a test that runs it), ' +
      'or add it to ELSEWHERE there with the test that runs it',
  );
  for (const e of ELSEWHERE) {
    const file = join(ROOT, e.by);
    assert.ok(existsSync(file), `${e.by}, said to run ${e.match}, does not exist`);
    assert.match(readFileSync(file, 'utf8'), e.evidence, `${e.by} no longer shows that it runs ${e.match} (${e.why})`);
  }
  // And no entry for a command the docs no longer have: the lists say what the docs hold.
  const texts = new Set(commands.map((c) => c.command));
  const stale = [
    ...Object.keys(RUN_HERE).filter((k) => !texts.has(k)),
    ...ELSEWHERE.filter((e) => !e.standing && ![...texts].some((t) => (typeof e.match === 'string' ? e.match === t : e.match.test(t)))).map((e) => String(e.match)),
  ];
  assert.deepEqual(stale, [], 'these entries name commands no doc has any more: remove them from docs-commands.test.ts');
});

// --- running them ------------------------------------------------------------------------------

interface Running {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}
const running: Running[] = [];

/** npm and npx as a reader's shell has them, but offline: nothing is fetched from a registry. */
function readerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, TIDEWIRE_DATABASE_URL: '', npm_config_offline: 'true', npm_config_update_notifier: 'false', npm_config_fund: 'false', ...extra };
}

/** A command through /bin/sh in its own process group (a stop reaches npm's and npx's children too). */
function shell(command: string, cwd: string, env: NodeJS.ProcessEnv = readerEnv()): Running {
  const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const r = { child, output: () => out, exited };
  running.push(r);
  return r;
}

/** SIGTERM (or Ctrl-C's SIGINT) to the group, SIGKILL after 20 s; the exit code. */
async function stop(r: Running, sig: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-r.child.pid!, s);
    } catch {
      // the group is gone already
    }
  };
  const alive = () => {
    try {
      process.kill(-r.child.pid!, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (alive()) signal(sig);
  const timer = setTimeout(() => signal('SIGKILL'), 20_000);
  try {
    const code = await r.exited;
    // The shell (or npm) may end before the server it started has finished its shutdown: wait for the whole group.
    await waitFor('the process group to end', () => !alive(), 25_000, 100).catch(() => {});
    return code;
  } finally {
    clearTimeout(timer);
    signal('SIGKILL');
  }
}

/** Runs a command to its end (bounded); its exit code and output. */
async function runToEnd(command: string, cwd: string, env?: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<{ code: number | null; out: string }> {
  const r = shell(command, cwd, env);
  const timer = setTimeout(() => void stop(r, 'SIGKILL'), timeoutMs);
  const code = await r.exited;
  clearTimeout(timer);
  return { code, out: r.output() };
}

/** Waits until a running command has printed `pattern`, failing early (with its output) if it exits. */
async function printed(r: Running, what: string, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  const m = await waitFor<RegExpExecArray | undefined>(
    what,
    () => {
      const m = pattern.exec(r.output());
      if (m) return m;
      if (r.child.exitCode !== null || r.child.signalCode !== null) throw new Error(`exited (${r.child.exitCode ?? r.child.signalCode}) first:\n${r.output().slice(-3000)}`);
      return undefined;
    },
    timeoutMs,
    100,
  );
  return m!;
}

/** The docs' command, exactly as written; the runner checks it is one of the docs'. */
function docCommand(text: string): string {
  assert.ok(allDocCommands().some((c) => c.command === text), `\`${text}\` is not in the docs any more`);
  ran.add(text);
  return text;
}

after(async () => {
  for (const r of running) await stop(r, 'SIGKILL');
});

/** The one delta line the README shows for `watch`: `delta    <path> v<n> <patch> (<n> B, full value <n> B)`. */
const WATCH_LINE = /^delta {4}(\S+) v(\d+) (\[.*\]) \((\d+) B, full value (\d+) B\)$/m;

test('the demo: npm start, its banner, npx tidewire watch and the SDK program as the README shows them', { timeout: 300_000 }, async () => {
  const port = await freePort();
  // `npm start` builds the dashboard first when it is out of date, then starts the embedded demo.
  const demo = shell(`${docCommand('npm start')} -- --port ${port}`, ROOT);
  try {
    await printed(demo, 'the demo to start', /tidewire demo is running/, 240_000);
    const banner = demo.output();
    const link = /a topic:\s+(http:\/\/\S+)/.exec(banner)?.[1];
    assert.ok(link, `the banner links a topic:\n${banner}`);
    assert.equal((await fetch(link)).status, 200, `the banner's topic ${link} answers`);
    assert.match(banner, new RegExp(`watch it:\\s+npx tidewire watch 'orders/\\*\\*' --url ws://127\\.0\\.0\\.1:${port}/ws`), 'the banner says how to watch');

    // The README's example line, and what the demo prints for the same kind of change.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const shown = WATCH_LINE.exec(readme);
    assert.ok(shown, 'the README shows an example delta line of watch');
    const shownPaths = (JSON.parse(shown[3]) as Array<{ path: string }>).map((op) => op.path);
    const watch = shell(`${docCommand("npx tidewire watch 'orders/**'")} --url ws://127.0.0.1:${port}/ws`, ROOT);
    await printed(watch, 'watch to be live', /^live: \d+ topics match orders\/\*\*$/m);
    const same = await printed(
      watch,
      `a delta of ${shownPaths.join(', ')} like the README's`,
      new RegExp(`^delta {4}orders/\\d+/\\d+ v\\d+ \\[\\{"op":"replace","path":"${shownPaths[0]}",[^\\]]*\\] \\(\\d+ B, full value \\d+ B\\)$`, 'm'),
      90_000,
    );
    const real = WATCH_LINE.exec(same[0])!;
    assert.deepEqual((JSON.parse(real[3]) as Array<{ path: string }>).map((op) => op.path), shownPaths, `the same fields change: ${same[0]}`);
    const [shownBytes, shownFull, realBytes, realFull] = [shown[4], shown[5], real[4], real[5]].map(Number);
    assert.ok(Math.abs(realBytes - shownBytes) <= 12, `the README's delta size (${shownBytes} B) is what the demo sends (${realBytes} B): ${same[0]}`);
    assert.ok(Math.abs(realFull - shownFull) <= shownFull * 0.1, `the README's full value size (${shownFull} B) is what the demo's rows cost (${realFull} B)`);
    assert.ok(realBytes * 2 < realFull, `a one-field change saves most of the bytes: ${realBytes} B of ${realFull} B`);

    // The writer deletes orders within seconds; the one the banner links stays.
    await printed(watch, 'the writer to delete an order', /^removal {2}orders\//m, 120_000);
    assert.equal((await fetch(link)).status, 200, `the banner's topic ${link} still answers after deletes`);
    assert.ok(!new RegExp(`^removal {2}${new URL(link).pathname.replace('/topics/', '')} `, 'm').test(watch.output()), 'the linked topic was never removed');
    await stop(watch);

    // The README's SDK program, with the package name pointing at this checkout's SDK.
    const program = /## Client SDK[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(program && program.includes("from '@tidewire/client'") && program.includes('await client.connect()'), 'the README has a complete SDK program');
    const dir = mkdtempSync(join(tmpdir(), 'tidewire-docs-sdk-'));
    try {
      writeFileSync(
        join(dir, 'live.mjs'),
        program.replace("'@tidewire/client'", JSON.stringify(pathToFileURL(join(ROOT, 'client/index.ts')).href)).replace('ws://127.0.0.1:8080/ws', `ws://127.0.0.1:${port}/ws`),
      );
      const live = shell(`node --import tsx ${JSON.stringify(join(dir, 'live.mjs'))}`, ROOT);
      await printed(live, 'the SDK program to connect', /^connection connecting\nconnection open$/m);
      await printed(live, 'a line per order', /^orders\/\d+\/\d+ v\d+ (new|paid|packed|shipped|delivered)$/m);
      await printed(live, 'the SDK program to be live', /^live: \d+ orders$/m);
      await stop(live);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    // Ctrl-C, as the reader stops it.
    await stop(demo, 'SIGINT');
  }
});

/** A folder like a reader's: `npx tidewire` is this checkout's CLI, as `npm install tidewire` would link it. */
function readerFolder(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs-reader', private: true }));
  mkdirSync(join(dir, 'node_modules/.bin'), { recursive: true });
  symlinkSync(join(ROOT, 'bin/tidewire.mjs'), join(dir, 'node_modules/.bin/tidewire'));
  return dir;
}

async function ready(port: number): Promise<boolean> {
  const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null);
  return r !== null && r.status === 200;
}

let db: TestPostgres | undefined;
const folders: string[] = [];
after(async () => {
  await db?.stop();
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});

test('against your database: check, start, slots and the example configuration as the README and OPERATIONS.md show them', { timeout: 300_000 }, async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL, internal_notes text)');
  await db.query(`INSERT INTO public.orders SELECT i, 1 + i % 3, 'open', 'not for clients' FROM generate_series(1, 20) i`);

  // tidewire.yaml is the README's example configuration, pointed at this database and a free port.
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const yaml = /## Running against your database[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(yaml && yaml.includes('postgres://tidewire:secret@db:5432/shop') && yaml.includes('port: 8080'), "the README's example configuration");
  const port = await freePort();
  const folder = readerFolder('tidewire-docs-db-');
  folders.push(folder);
  writeFileSync(join(folder, 'tidewire.yaml'), yaml.replace('postgres://tidewire:secret@db:5432/shop', db.url).replace('port: 8080', `port: ${port}`).replace(/^# yaml-language-server.*\n/m, ''));

  const check = await runToEnd(docCommand('npx tidewire check --config tidewire.yaml'), folder);
  assert.equal(check.code, 0, `check passes:\n${check.out}`);
  assert.match(check.out, /^✔ config: tidewire\.yaml is valid$/m);
  assert.match(check.out, /^✔ wal_level: logical$/m);
  assert.doesNotMatch(check.out, /^✘/m);

  const server = shell(docCommand('npx tidewire start --config tidewire.yaml'), folder);
  try {
    await waitFor('the server to be ready', async () => {
      if (server.child.exitCode !== null) throw new Error(`exited ${server.child.exitCode}:\n${server.output()}`);
      return ready(port);
    }, 90_000, 200);
    const topic = (await (await fetch(`http://127.0.0.1:${port}/topics/orders/2/1`)).json()) as { value: Record<string, unknown> };
    assert.deepEqual(topic.value, { id: 1, customer_id: 2, status: 'open' }, 'orders/{customer_id}/{id}, internal_notes excluded');

    const slots = await runToEnd(docCommand('npx tidewire slots --config tidewire.yaml'), folder);
    assert.equal(slots.code, 0, slots.out);
    assert.deepEqual(slots.out.split('\n')[0].split(/\s+/), ['SLOT', 'ACTIVE', 'PID', 'RESTART_LSN', 'CONFIRMED_LSN', 'LAG_BYTES', 'LAG'], slots.out);
    assert.match(slots.out, /^tidewire\s+yes\s+\d+/m, "the running server's slot, active");
  } finally {
    await stop(server);
  }
  assert.match(server.output(), /"msg":"shut down"/, `a SIGTERM stops it cleanly:\n${server.output().slice(-2000)}`);

  await db.query(`SELECT pg_create_logical_replication_slot('tidewire_old', 'pgoutput')`);
  const drop = await runToEnd(docCommand('npx tidewire slots --url postgres://… --drop tidewire_old').replace('postgres://…', `'${db.url}'`), folder);
  assert.equal(drop.code, 0, drop.out);
  assert.match(drop.out, /tidewire_old/);
  assert.equal((await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tidewire_old'`)).rowCount, 0, 'the slot is dropped');

  // examples/orders.yaml, from a folder holding a copy of it (its state goes to that folder's .tidewire/).
  const examples = readerFolder('tidewire-docs-example-');
  folders.push(examples);
  mkdirSync(join(examples, 'examples'));
  copyFileSync(join(ROOT, 'examples/orders.yaml'), join(examples, 'examples/orders.yaml'));
  const port2 = await freePort();
  const example = shell(`${docCommand('npx tidewire start --config examples/orders.yaml')} --port ${port2}`, examples, readerEnv({ TIDEWIRE_DATABASE_URL: db.url }));
  try {
    await waitFor('the example configuration to be ready', async () => {
      if (example.child.exitCode !== null) throw new Error(`exited ${example.child.exitCode}:\n${example.output()}`);
      return ready(port2);
    }, 90_000, 200);
    const topic = (await (await fetch(`http://127.0.0.1:${port2}/topics/orders/1/3`)).json()) as { value: Record<string, unknown> };
    assert.deepEqual(topic.value, { id: 3, customer_id: 1, status: 'open' });
  } finally {
    await stop(example);
  }
  assert.match(example.output(), /"msg":"shut down"/, example.output().slice(-2000));
  assert.ok(existsSync(join(examples, '.tidewire/state')), 'its durable state is under the working folder');
});

test('each command listed as run here was run', () => {
  assert.deepEqual(Object.keys(RUN_HERE).filter((c) => !ran.has(c)), [], 'RUN_HERE names commands no test in this file ran');
});

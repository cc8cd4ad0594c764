/**
 * Regenerates the README's dashboard screenshot, docs/images/dashboard.png (1280x800): starts the
 * demo (`tidewire start` without a config: its throwaway Postgres and its writer) on a free port,
 * opens the dashboard in Debian's Chromium (test/support/browser.ts), lets the demo's changes run
 * for a while so the rate chart has a shape and the bandwidth saved is that of live changes, and
 * takes the picture mid-highlight. Stops the demo (its process group) whatever happens.
 *
 *   npm run screenshot [-- <output.png>] [--seconds N]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../support/postgres.ts';
import { ROOT, ensureBuilt, launchChromium, openPage } from '../support/browser.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { seconds: { type: 'string', default: '40' } } });
const output = resolve(positionals[0] ?? join(ROOT, 'docs/images/dashboard.png'));
const seconds = Number(values.seconds);

/** Starts the demo in a process group of its own; resolves once it answers /ready. */
async function startDemo(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'start', '--port', String(port)], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TIDEWIRE_LOG_FORMAT: 'json' },
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the demo exited (${child.exitCode}):\n${log}`);
    const ready = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false);
    if (ready) return child;
    if (Date.now() > deadline) throw new Error(`the demo was not ready within 120 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopDemo(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

await ensureBuilt('dashboard');
const port = await freePort();
const demo = await startDemo(port);
try {
  const browser = await launchChromium();
  try {
    const page = await openPage(browser, { width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'no-preference' });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('[data-testid="connection-state"][data-live="true"]', { timeout: 60_000 });
    // The demo's writer changes rows every 250 ms: let the chart and the counters fill.
    await page.waitForTimeout(seconds * 1000);
    await page.waitForSelector('td.changed', { timeout: 30_000 });
    await page.waitForTimeout(80); // mid-flash: the highlight fades over a second
    await page.screenshot({ path: output });
    const saved = await page.textContent('[data-testid="bytes-saved"]');
    console.log(`wrote ${output} (1280x800; bandwidth saved over live changes: ${saved})`);
  } finally {
    await browser.close();
  }
} finally {
  await stopDemo(demo);
}

/**
 * Runs `tidewire start` as a separate process, so tests can kill it with SIGKILL like a crash.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `tidewire start --config` on `config`. Without a `state` section the process gets a new,
 * empty state dir of its own (a first start); pass `state: { dir }` to restart on the same state.
 */
/** `onSpawn` gets the child at once, before it is healthy (e.g. to kill it mid-snapshot). */
export async function startServiceProcess(config: object, port: number, options: { onSpawn?: (child: ChildProcess) => void } = {}): Promise<ServiceProcess> {
  const file = join(tmpdir(), `tidewire-test-${process.pid}-${Date.now()}.json`);
  const withState = 'state' in config ? config : { ...config, state: { dir: mkdtempSync(join(tmpdir(), 'tidewire-test-state-')) } };
  writeFileSync(file, JSON.stringify(withState));
  const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'start', '--config', file, '--port', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TIDEWIRE_DATABASE_URL: '' },
  });
  options.onSpawn?.(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.once('exit', () => child.kill('SIGKILL'));
  const healthy = waitFor(
    `tidewire on port ${port} to be healthy`,
    async () => {
      const r = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
      return r !== null && r.status === 200 && ((await r.json()) as { status: string }).status === 'ok';
    },
    60_000,
    100,
  );
  // A process that exits first fails the start at once, with what it printed.
  const died = exited.then((code) => {
    throw new Error(`tidewire exited with ${code}: ${out.slice(-4000)}`);
  });
  await Promise.race([healthy, died]).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n--- tidewire output ---\n${out.slice(-4000)}`, { cause: err });
  });
  died.catch(() => {});
  healthy.catch(() => {});
  return {
    child,
    port,
    output: () => out,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

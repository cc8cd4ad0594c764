/**
 * Runs `tidewire start` as a separate process, so tests can kill it with SIGKILL like a crash.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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

export async function startServiceProcess(config: object, port: number): Promise<ServiceProcess> {
  const file = join(tmpdir(), `tidewire-test-${process.pid}-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'start', '--config', file, '--port', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TIDEWIRE_DATABASE_URL: '' },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.once('exit', () => child.kill('SIGKILL'));
  await waitFor(
    `tidewire on port ${port} to be healthy`,
    async () => {
      if (child.exitCode !== null) throw new Error(`tidewire exited with ${child.exitCode}: ${out.slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
      return r !== null && r.status === 200 && ((await r.json()) as { status: string }).status === 'ok';
    },
    60_000,
    100,
  );
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

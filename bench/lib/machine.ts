/** The machine a run happened on, for the results and docs/BENCHMARKS.md. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { loadAverage } from './proc.ts';

export interface MachineInfo {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly os: string;
  readonly kernel: string;
  readonly node: string;
  readonly java: string;
  readonly loadAverage: [number, number, number];
  /** The code measured: HEAD and how many tracked files differed from it (others work in this tree too). */
  readonly git: { readonly head: string; readonly modifiedFiles: number };
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string };
    return (err.stderr ?? '').trim() || 'unavailable';
  }
}

export function machineInfo(): MachineInfo {
  const release = (() => {
    try {
      return /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
    } catch {
      return os.type();
    }
  })();
  // `java -version` prints on stderr.
  let java = 'unavailable';
  try {
    execFileSync('java', ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    // not reached for a working java: it exits 0
  }
  try {
    const r = execFileSync('sh', ['-c', 'java -version 2>&1'], { encoding: 'utf8' });
    java = r.split('\n').slice(0, 2).join(' / ').trim();
  } catch {
    java = 'unavailable';
  }
  return {
    nproc: Number(tryRun('nproc', [])) || os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: release,
    kernel: os.release(),
    node: process.version,
    java,
    loadAverage: loadAverage(),
    git: {
      head: tryRun('git', ['rev-parse', '--short', 'HEAD']),
      modifiedFiles: tryRun('git', ['status', '--porcelain', '--untracked-files=no']).split('\n').filter(Boolean).length,
    },
  };
}

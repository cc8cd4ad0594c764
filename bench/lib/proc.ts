/**
 * Measuring processes from outside, as bench/peers/debezium.ts does for the JVM: CPU seconds
 * (utime+stime) and peak RSS (VmHWM) from /proc, polled, so a child's own figures and Debezium's
 * are taken the same way.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticks: number | undefined;
function clkTck(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

export interface ProcSample {
  /** utime+stime, seconds. */
  readonly cpu: number;
  /** VmRSS, bytes. */
  readonly rss: number;
  /** VmHWM (peak RSS), bytes. */
  readonly hwm: number;
}

/** CPU and memory of a live process, or undefined once it is gone. Synchronous: /proc reads do not block. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(rest[11]) + Number(rest[12])) / clkTck();
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { cpu, rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Polls a process every `intervalMs`; keeps the largest CPU and peak RSS seen. */
export class ProcWatch {
  cpu = 0;
  hwm = 0;
  rss = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): ProcSample | undefined {
    const s = sampleProc(this.pid);
    if (s) {
      this.cpu = Math.max(this.cpu, s.cpu);
      this.hwm = Math.max(this.hwm, s.hwm);
      this.rss = s.rss;
    }
    return s;
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [a, b, c];
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Parent pid of a process, or undefined once it is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** A process and its direct children (e.g. a postmaster and its backends, walsenders, workers). */
export function withChildren(pid: number): number[] {
  const out = [pid];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (parentPid(Number(name)) === pid) out.push(Number(name));
  }
  return out;
}

/** A watched process, or a group of them found again at the window's end (children come and go). */
export type Watched = number | (() => number[]);

/**
 * CPU used over a window, in cores (1.0 = one core fully busy), per watched process or group, for
 * the whole machine (everything on it), and for everything else (`other`: other jobs on the machine).
 */
export class CpuWindow {
  private readonly t0 = performance.now();
  private readonly start: Record<string, Map<number, number>>;
  private readonly m0 = machineTicks();

  constructor(private readonly watched: Record<string, Watched>) {
    this.start = Object.fromEntries(Object.entries(watched).map(([k, w]) => [k, cpuOf(w)]));
  }

  end(): { seconds: number; cores: Record<string, number>; machineBusy: number; otherCores: number } {
    const seconds = (performance.now() - this.t0) / 1000;
    const cores: Record<string, number> = {};
    let mine = 0;
    for (const [k, w] of Object.entries(this.watched)) {
      const before = this.start[k];
      let used = 0;
      // A process that started during the window used all of its CPU inside it.
      for (const [pid, cpu] of cpuOf(w)) used += cpu - (before.get(pid) ?? 0);
      cores[k] = Math.round((used / seconds) * 100) / 100;
      mine += used / seconds;
    }
    const m1 = machineTicks();
    const machineBusy = Math.round(((m1.busy - this.m0.busy) / Math.max(1, m1.total - this.m0.total)) * 1000) / 1000;
    const nproc = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).length || 1;
    const otherCores = Math.max(0, Math.round((machineBusy * nproc - mine) * 100) / 100);
    return { seconds, cores, machineBusy, otherCores };
  }
}

function cpuOf(w: Watched): Map<number, number> {
  const pids = typeof w === 'number' ? [w] : w();
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = sampleProc(pid);
    if (s) out.set(pid, s.cpu);
  }
  return out;
}

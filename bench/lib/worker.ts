/**
 * Child processes for load generators, writers and servers under test: each is a TypeScript file
 * in bench/workers/ forked with tsx, answering calls over the IPC channel (see serve() below).
 * Separate processes keep the measured side and the load generator from sharing one event loop,
 * and let /proc measure each one's CPU and memory.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcWatch } from './proc.ts';

const WORKERS = fileURLToPath(new URL('../workers/', import.meta.url));

type Reply = { id: number; result?: unknown; error?: string };
type Event = { event: string; data?: unknown };

export interface WorkerOptions {
  /** Extra node flags, e.g. `--max-old-space-size=8192`, `--cpu-prof`. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /**
   * The folder of the worker files (default: this checkout's bench/workers/): another checkout's,
   * to run two versions of tidewire side by side in one benchmark (bench/subscription-profile.ts).
   */
  dir?: string;
}

/** Workers still running, killed when this process exits: one listener for all (one each passed Node's 10-listener warning). */
const live = new Set<{ kill(signal: NodeJS.Signals): boolean }>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class Worker {
  readonly child: ChildProcess;
  readonly watch: ProcWatch;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Set<(data: unknown) => void>>();
  private exitError: Error | null = null;
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    args: string[],
    options: WorkerOptions,
  ) {
    this.child = fork(join(options.dir ?? WORKERS, `${name}.ts`), args, {
      execArgv: ['--import', 'tsx', ...(options.nodeArgs ?? [])],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.watch = new ProcWatch(this.child.pid!);
    this.child.on('message', (m: Reply | Event) => {
      if ('event' in m) {
        for (const l of this.listeners.get(m.event) ?? []) l(m.data);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.watch.stop();
        this.exitError = new Error(`worker ${name} exited (${signal ?? `code ${code}`})`);
        for (const p of this.pending.values()) p.reject(this.exitError);
        this.pending.clear();
        resolve(code);
      });
    });
    live.add(this.child);
    void this.exited.then(() => live.delete(this.child));
  }

  /** Forks bench/workers/<name>.ts and waits for its `ready` event. */
  static async start(name: string, args: string[] = [], options: WorkerOptions = {}): Promise<Worker> {
    const w = new Worker(name, args, options);
    await new Promise<void>((resolve, reject) => {
      w.once('ready', () => resolve());
      void w.exited.then(() => reject(w.exitError));
    });
    return w;
  }

  call<T = unknown>(method: string, params: unknown = {}): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, method, params });
    });
  }

  on(event: string, listener: (data: unknown) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  once(event: string, listener: (data: unknown) => void): void {
    const off = this.on(event, (d) => {
      off();
      listener(d);
    });
  }

  /** Asks the worker to exit (it runs its `stop` handler, if any) and waits; kills it after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    this.call('exit').catch(() => {});
    await this.exited;
    clearTimeout(timer);
  }
}

/** The worker side of lib/worker.ts: answers calls from the parent over IPC. */

export type Handlers = Record<string, (params: any) => unknown>;

/** Registers handlers, then tells the parent the worker is ready. `exit` runs `stop` (when given) and exits. */
export function serve(handlers: Handlers, stop?: () => Promise<void> | void): void {
  if (!process.send) throw new Error('a bench worker must be started by bench/lib/worker.ts (no IPC channel)');
  process.on('message', async (m: { id: number; method: string; params: unknown }) => {
    if (m.method === 'exit') {
      try {
        await stop?.();
      } finally {
        process.exit(0);
      }
    }
    const h = handlers[m.method];
    try {
      if (!h) throw new Error(`no method ${m.method}`);
      const result = await h(m.params);
      process.send!({ id: m.id, result });
    } catch (err) {
      process.send!({ id: m.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
  // The parent is gone: nothing left to measure.
  process.on('disconnect', () => process.exit(0));
  emit('ready');
}

export function emit(event: string, data?: unknown): void {
  process.send?.({ event, data });
}

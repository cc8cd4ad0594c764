/**
 * `tidewire watch` reconnects with backoff that starts over only once the server answered the
 * subscription (issue 12, item 6): a server that accepts and then closes at once (4008) is retried
 * less and less often, not every 250 ms forever, and each "reconnecting" line says the close code
 * and reason. Against a WebSocket server that closes every session with 4008, and a real tidewire
 * service stopped and started again on the same port.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { backoffStep } from '../../core/backoff.ts';
import { WATCH_RECONNECT } from '../../services/cli/watch.ts';
import type { TidewireService } from '../../services/service.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { startService } from '../support/service.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

interface Watch {
  child: ChildProcessWithoutNullStreams;
  out(): string;
  /** Resolves once the output matches `re` (at most `timeoutMs`). */
  until(re: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function watch(url: string, selector = 'orders/**'): Watch {
  const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'watch', selector, '--url', url], { cwd: ROOT, env: { ...process.env, TIDEWIRE_TOKEN: '' } });
  let out = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d) => {
    out += d;
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    child,
    out: () => out,
    until: (re, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!re.test(out)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`watch never printed ${re}; it printed:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The "reconnecting" lines: why, the delay and the attempt number. */
function reconnects(out: string): Array<{ why: string; delay: number; attempt: number }> {
  return [...out.matchAll(/^(.*); reconnecting in (\d+) ms \(attempt (\d+)\)$/gm)].map((m) => ({ why: m[1], delay: Number(m[2]), attempt: Number(m[3]) }));
}

test('a server that accepts and closes every session with 4008 is retried with growing delays, and the line says why', { timeout: 120_000 }, async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  let sessions = 0;
  wss.on('connection', (ws) => {
    sessions++;
    ws.send(JSON.stringify([{ type: 'hello', protocol: 1, epoch: 'e1', server: 'tidewire', maxPayloadBytes: 65536 }]));
    // What a tidewire whose client cannot be served within its limits does: close 4008.
    ws.on('message', () => ws.close(4008, 'send queue full'));
  });
  await new Promise((r) => wss.once('listening', r));
  const { port } = wss.address() as { port: number };
  const w = watch(`ws://127.0.0.1:${port}/ws`);
  try {
    await w.until(/\(attempt 5\)/);
    const lines = reconnects(w.out());
    assert.deepEqual(lines.map((l) => l.attempt), [1, 2, 3, 4, 5], w.out());
    for (const [i, l] of lines.entries()) {
      assert.equal(l.why, 'disconnected (4008 send queue full)');
      // Full jitter under a step that doubles: never above the step of its attempt.
      assert.ok(l.delay <= backoffStep(i, WATCH_RECONNECT), `attempt ${l.attempt}: ${l.delay} ms <= ${backoffStep(i, WATCH_RECONNECT)} ms`);
    }
    assert.equal(sessions, 5, 'one session per attempt');
  } finally {
    await w.stop();
    await new Promise((r) => wss.close(r));
  }
});

let db: TestPostgres;
before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)');
  await db.query(`INSERT INTO orders VALUES (1, 'new')`);
});
after(async () => {
  await db?.stop();
});

test('against a real tidewire: a stop shows 1001 and its reason, the attempts grow while it is down, and an answered subscription starts over', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const config = {
    server: { host: '127.0.0.1', port },
    postgres: { url: db.url, slot: 'watch_backoff', publication: 'watch_backoff', tables: [{ table: 'public.orders', path: 'orders/{id}' }] },
    state: { memory: true },
  };
  let service: TidewireService | null = (await startService(config)).service;
  const w = watch(`ws://127.0.0.1:${port}/ws`);
  try {
    await w.until(/live: 1 topics match orders\/\*\*/);
    await service.stop();
    service = null;
    // Down: refused connections, each attempt further out than the one before may be.
    await w.until(/\(attempt 3\)/);
    const down = reconnects(w.out());
    assert.match(down[0].why, /^disconnected \(1001( .+)?\)$/, w.out());
    assert.deepEqual(down.map((l) => l.attempt), [1, 2, 3]);

    service = (await startService(config)).service;
    await w.until(/live: 1 topics match[\s\S]*live: 1 topics match/);
    const before = reconnects(w.out()).length;
    await service.stop();
    service = null;
    await w.until(new RegExp(`(reconnecting in[^\\n]*\\n[\\s\\S]*){${before + 1}}`));
    // The subscription was answered again, so the backoff started over.
    assert.equal(reconnects(w.out())[before].attempt, 1, w.out());
  } finally {
    await w.stop();
    await service?.stop();
  }
});

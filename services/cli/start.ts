import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Config, loadConfigFile, parseConfig } from '../config/config.ts';
import { startDemoDatabase, startDemoWriter } from '../demo/demo.ts';
import { KEPT_TOPIC } from '../demo/demo-orders.ts';
import { createLogger, resolveLogFormat } from '../logger.ts';
import { TidewireService } from '../service.ts';
import { ProgressBar } from './progress-bar.ts';

const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/dist', import.meta.url));

/** A shutdown that has not finished by then (a hung connection) ends the process anyway, with exit code 1. */
const SHUTDOWN_DEADLINE_MS = 15_000;

/** Where `start --config` keeps durable state when the file does not say: under the working directory. */
export const DEFAULT_STATE_DIR = '.tidewire/state';

/** `state.dir` defaults to DEFAULT_STATE_DIR unless the file asks for state in memory (an edge's state is always in memory). */
export function withDefaultStateDir(config: Config): Config {
  if (config.state?.memory === true || config.state?.dir || config.role === 'edge') return config;
  return { ...config, state: { ...config.state, dir: DEFAULT_STATE_DIR } };
}

/** Runs until SIGINT/SIGTERM; returns -1 so the exit code is left to the shutdown path. */
export async function startCommand(opts: { config?: string; port?: number }): Promise<number> {
  const demo = opts.config === undefined;
  let config: Config = demo ? parseConfig({ server: { port: 8080 } }) : loadConfigFile(opts.config!);
  if (opts.port !== undefined) config = { ...config, server: { ...config.server, port: opts.port } };
  // In a terminal the initial snapshot draws a progress bar (stderr); logs get a `snapshot progress`
  // record either way. Log lines to the same terminal are written around the bar, not through it.
  const bar = process.stderr.isTTY ? new ProgressBar(process.stderr) : null;
  // log.format auto: human-readable lines in a terminal, JSON lines for files, pipes and collectors.
  const format = resolveLogFormat(config.log.format, process.stdout.isTTY);
  const destination = bar && process.stdout.isTTY ? { write: (line: string) => bar.around(() => process.stdout.write(line)) } : 1;
  const log = createLogger(config.log.level, destination, { format, color: format === 'pretty' && process.stdout.isTTY === true });
  const cleanups: Array<() => Promise<void>> = [];

  if (demo) {
    const db = await startDemoDatabase(log);
    cleanups.push(db.stop);
    config = parseConfig({
      server: config.server,
      log: config.log,
      postgres: { url: db.url, slot: 'tidewire_demo', publication: 'tidewire_demo', tables: [{ table: 'public.orders', path: 'orders/{customer_id}/{id}' }] },
      // The demo's database is thrown away at exit; so is its state.
      state: { dir: mkdtempSync(join(tmpdir(), 'tidewire-state-demo-')) },
    }, {});
    const stateDir = config.state!.dir!;
    cleanups.push(async () => rmSync(stateDir, { recursive: true, force: true }));
  } else {
    config = withDefaultStateDir(config);
  }
  const service = new TidewireService(config, {
    logger: log,
    onSnapshotProgress: bar ? (r) => bar.update(r) : undefined,
    staticDir: existsSync(DASHBOARD_DIR) ? DASHBOARD_DIR : undefined,
    configDir: demo ? undefined : dirname(resolve(opts.config!)),
    readConfig: demo ? undefined : () => loadConfigFile(opts.config!),
  });
  cleanups.unshift(() => service.stop());
  let stopping = false;
  // Graceful: stop accepting, flush and close every session, acknowledge what was applied, close
  // the replication connection (the slot stays), then exit 0. A second signal exits at once.
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without finishing the shutdown');
      log.flush(() => process.exit(1));
      return;
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error({ ms: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time: exiting');
      log.flush(() => process.exit(1));
    }, SHUTDOWN_DEADLINE_MS).unref();
    for (const c of cleanups) await c().catch((err) => log.error({ err }, 'shutdown step failed'));
    log.info({ signal }, 'shut down');
    log.flush(() => process.exit(0));
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  // SIGHUP reloads the security settings; a broken file keeps the previous ones in force.
  process.on('SIGHUP', () => {
    try {
      log.info(service.reloadSecurity('SIGHUP'), 'security reloaded');
    } catch (err) {
      log.error({ err }, 'security reload failed: the previous configuration stays in force');
    }
  });

  try {
    const { port } = await service.start();
    bar?.finish();
    if (demo) {
      const writer = startDemoWriter(config.postgres!.url, log);
      cleanups.splice(1, 0, writer.stop);
      process.stderr.write(
        `\ntidewire demo is running: a throwaway Postgres with an 'orders' table and a writer changing it.\n` +
          `  WebSocket:  ws://127.0.0.1:${port}/ws\n` +
          `  a topic:    http://127.0.0.1:${port}/topics/${KEPT_TOPIC}   (the writer changes it, never deletes it)\n` +
          (existsSync(DASHBOARD_DIR) ? `  dashboard:  http://127.0.0.1:${port}/\n` : '') +
          `  watch it:   npx tidewire watch 'orders/**' --url ws://127.0.0.1:${port}/ws\n\n`,
      );
    }
  } catch (err) {
    bar?.abandon();
    for (const c of cleanups.slice(1)) await c().catch(() => {});
    throw err;
  }
  return -1;
}

import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Config, loadConfigFile, parseConfig } from '../config/config.ts';
import { startDemoDatabase, startDemoWriter } from '../demo/demo.ts';
import { createLogger } from '../logger.ts';
import { TidewireService } from '../service.ts';

const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/dist', import.meta.url));

/** Runs until SIGINT/SIGTERM; returns -1 so the exit code is left to the shutdown path. */
export async function startCommand(opts: { config?: string; port?: number }): Promise<number> {
  const demo = opts.config === undefined;
  let config: Config = demo ? parseConfig({ server: { port: 8080 } }) : loadConfigFile(opts.config!);
  if (opts.port !== undefined) config = { ...config, server: { ...config.server, port: opts.port } };
  const log = createLogger(config.log.level);
  const cleanups: Array<() => Promise<void>> = [];

  if (demo) {
    const db = await startDemoDatabase(log);
    cleanups.push(db.stop);
    config = parseConfig({
      server: config.server,
      log: config.log,
      postgres: { url: db.url, slot: 'tidewire_demo', publication: 'tidewire_demo', tables: [{ table: 'public.orders', path: 'orders/{customer_id}/{id}' }] },
    }, {});
  }
  const service = new TidewireService(config, {
    logger: log,
    staticDir: existsSync(DASHBOARD_DIR) ? DASHBOARD_DIR : undefined,
    configDir: demo ? undefined : dirname(resolve(opts.config!)),
    readConfig: demo ? undefined : () => loadConfigFile(opts.config!),
  });
  cleanups.unshift(() => service.stop());
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const c of cleanups) await c().catch((err) => log.error({ err }, 'shutdown step failed'));
    log.flush();
    process.exit(0);
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
    if (demo) {
      const writer = startDemoWriter(config.postgres!.url, log);
      cleanups.splice(1, 0, writer.stop);
      process.stderr.write(
        `\ntidewire demo is running: a throwaway Postgres with an 'orders' table and a writer changing it.\n` +
          `  WebSocket:  ws://127.0.0.1:${port}/ws\n` +
          `  a topic:    http://127.0.0.1:${port}/topics/orders/1/1\n` +
          (existsSync(DASHBOARD_DIR) ? `  dashboard:  http://127.0.0.1:${port}/\n` : '') +
          `  watch it:   npx tidewire watch 'orders/**' --url ws://127.0.0.1:${port}/ws\n\n`,
      );
    }
  } catch (err) {
    for (const c of cleanups.slice(1)) await c().catch(() => {});
    throw err;
  }
  return -1;
}

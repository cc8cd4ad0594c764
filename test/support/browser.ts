/**
 * Browser-test support: builds a Vite app when its build is missing or older than its sources,
 * starts a real Postgres with an `orders` table behind a TidewireService that serves the app,
 * launches Debian's Chromium through playwright-core (no browser download: apt-get install
 * chromium), and saves a screenshot of the page when a test fails.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { type Browser, type Page, chromium } from 'playwright-core';
import pino from 'pino';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';
import { type TestPostgres, startPostgres } from './postgres.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const ARTIFACTS = join(ROOT, 'test/artifacts');

export { ensureBuilt } from '../../dashboard/build.ts';

const CHROMIUM = process.env.TIDEWIRE_CHROMIUM ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps trying to reach Google's services,
// which on a closed network floods it with failing connections.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run 'apt-get install -y chromium' (or set TIDEWIRE_CHROMIUM to a Chromium binary)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

const pageErrors = new WeakMap<Page, string[]>();

/** A fresh page in its own context (own storage) at 1280x800; its console errors are kept for failure reports. */
export async function openPage(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors: string[] = [];
  pageErrors.set(page, errors);
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  return page;
}

/**
 * Runs a test's steps on `page`; if they throw, saves a full-page screenshot to test/artifacts/
 * (named after the test) and reports the page's console errors before rethrowing.
 */
export async function screenshotOnFailure(t: TestContext, page: Page, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (!page.isClosed()) {
      mkdirSync(ARTIFACTS, { recursive: true });
      const file = join(ARTIFACTS, `${t.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      t.diagnostic(`screenshot: ${relative(ROOT, file)}`);
    }
    const errors = pageErrors.get(page) ?? [];
    if (errors.length > 0) t.diagnostic(`page console errors:\n${errors.join('\n')}`);
    throw err;
  }
}

export interface OrdersService {
  db: TestPostgres;
  service: TidewireService;
  /** http://127.0.0.1:<port>/ — the app; its WebSocket is /ws on the same origin. */
  baseUrl: string;
  stop(): Promise<void>;
}

export const ORDERS_TABLE = `
  CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int NOT NULL,
    item text NOT NULL,
    qty int NOT NULL,
    price numeric(10,2) NOT NULL,
    status text NOT NULL,
    note text NOT NULL DEFAULT ''
  )`;

/**
 * A throwaway Postgres with an empty `orders` table, streamed by a TidewireService that maps
 * `public.orders` to `orders/{customer_id}/{id}` and serves `staticDir` at `/`. Resolves once the
 * snapshot is done.
 */
export function startOrdersService(staticDir: string): Promise<OrdersService> {
  return startTableService(staticDir, { sql: [ORDERS_TABLE], tables: [{ table: 'public.orders', path: 'orders/{customer_id}/{id}' }], name: 'tidewire_browser' });
}

export interface TableServiceOptions {
  /** Run in the fresh database before the service starts (tables, rows). */
  sql: string[];
  /** postgres.tables of the config. */
  tables: Array<{ table: string; path: string }>;
  /** The slot's and publication's name. */
  name: string;
}

/** A throwaway Postgres prepared by `sql`, streamed by a TidewireService mapping `tables`, serving `staticDir` at `/`. */
export async function startTableService(staticDir: string, options: TableServiceOptions): Promise<OrdersService> {
  const db = await startPostgres();
  try {
    for (const sql of options.sql) await db.query(sql);
    const config = parseConfig(
      {
        server: { host: '127.0.0.1', port: 0 },
        postgres: { url: db.url, slot: options.name, publication: options.name, tables: options.tables },
      },
      {},
    );
    const service = new TidewireService(config, { logger: pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' }), staticDir });
    const { port } = await service.start();
    return {
      db,
      service,
      baseUrl: `http://127.0.0.1:${port}/`,
      stop: async () => {
        await service.stop().catch(() => {});
        await db.stop();
      },
    };
  } catch (err) {
    await db.stop();
    throw err;
  }
}

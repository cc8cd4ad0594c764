/**
 * A write load for tests: `step` runs on one Postgres connection again and again until `stop()`,
 * which resolves with how many steps ran (a test asserts the load did run).
 */
import pg from 'pg';

export interface WriterLoop {
  stop(): Promise<number>;
}

export function startWriterLoop(url: string, step: (client: pg.Client, n: number) => Promise<void>, options: { pauseMs?: number; setup?: string } = {}): WriterLoop {
  const client = new pg.Client({ connectionString: url });
  let running = true;
  let count = 0;
  const done = (async () => {
    await client.connect();
    if (options.setup !== undefined) await client.query(options.setup);
    while (running) {
      await step(client, count);
      count++;
      if (options.pauseMs !== undefined) await new Promise((res) => setTimeout(res, options.pauseMs));
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return count;
    },
  };
}

/** A TidewireService for integration tests: config as a file would give it, on a free port, logging nothing. */
import pino from 'pino';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';

/** Starts the service (stopping it again if start fails); `url` is its WebSocket endpoint. */
export async function startService(config: unknown): Promise<{ service: TidewireService; url: string }> {
  const service = new TidewireService(parseConfig(config, {}), { logger: pino({ level: 'silent' }) });
  try {
    const { port } = await service.start();
    return { service, url: `ws://127.0.0.1:${port}/ws` };
  } catch (err) {
    await service.stop().catch(() => {});
    throw err;
  }
}

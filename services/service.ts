/**
 * Wires one tidewire node: topic state, the hand-off, the distribution service and the configured
 * sources. A fresh TopicStore (and so a fresh epoch) per process: sources rebuild state at start
 * (see docs/DESIGN.md, "Durability"), and clients see from the epoch that their versions are stale.
 */
import type { Source, SourceHealth } from '../connectors/source.ts';
import { KafkaConnector } from '../connectors/kafka/index.ts';
import { PostgresConnector } from '../connectors/postgres/index.ts';
import type { Config } from './config/config.ts';
import { ConfigError } from './errors.ts';
import { DistributionServer } from './distribution/index.ts';
import { InProcessHandoff } from './handoff/handoff.ts';
import type { Logger } from './logger.ts';
import { Pipeline } from './pipeline.ts';
import { type ReloadSummary, SecurityManager } from './security/index.ts';
import { TopicStore } from './topics/topic-store.ts';

export interface ServiceOptions {
  logger: Logger;
  /** Folder of static files (the dashboard) served at `/`. */
  staticDir?: string;
  /** Folder the configuration file is in: a relative `security.file` is resolved against it. */
  configDir?: string;
  /** Re-reads the configuration file, so a security reload (SIGHUP, POST /admin/reload) picks up inline changes too. */
  readConfig?: () => Config;
}

export class TidewireService {
  readonly store = new TopicStore();
  readonly handoff = new InProcessHandoff(this.store);
  readonly pipeline = new Pipeline(this.store, this.handoff);
  readonly distribution: DistributionServer;
  readonly sources: Source[] = [];
  /** Null when the configuration has no `security` section: every client may read every topic. */
  readonly security: SecurityManager | null;
  private readonly log: Logger;
  private readonly readConfig: (() => Config) | undefined;

  constructor(
    readonly config: Config,
    options: ServiceOptions,
  ) {
    this.log = options.logger;
    this.readConfig = options.readConfig;
    this.security = config.security
      ? SecurityManager.fromConfig(config.security, { logger: this.log.child({ component: 'security' }), baseDir: options.configDir })
      : null;
    this.distribution = new DistributionServer(this.handoff, config.server, {
      logger: this.log.child({ component: 'distribution' }),
      health: () => this.health(),
      staticDir: options.staticDir,
      security: this.security ?? undefined,
      reloadSecurity: this.security ? (by) => this.reloadSecurity(by) : undefined,
    });
    if (config.postgres) {
      this.sources.push(new PostgresConnector(config.postgres, this.pipeline, { logger: this.log.child({ component: 'postgres' }) }));
    }
    if (config.kafka) this.sources.push(new KafkaConnector(config.kafka, this.pipeline, { logger: this.log }));
    if (this.sources.length === 0) throw new ConfigError('(root)', 'no source is configured: add a postgres or a kafka section');
  }

  health(): { status: 'ok' | 'degraded' | 'failed'; sources: SourceHealth[] } {
    const sources = this.sources.map((s) => s.health());
    const status = sources.some((s) => s.state === 'failed')
      ? 'failed'
      : sources.some((s) => s.state !== 'streaming')
        ? 'degraded'
        : 'ok';
    return { status, sources };
  }

  /**
   * Applies the current security settings to live sessions (access removed stops at once, access
   * granted starts with current values). Re-reads the configuration file when there is one.
   */
  reloadSecurity(by: string): ReloadSummary {
    if (!this.security) throw new ConfigError('security', 'was off at start; restart tidewire to turn it on');
    if (!this.readConfig) return this.security.reload(undefined, by);
    const next = this.readConfig().security;
    if (!next) throw new ConfigError('security', 'cannot be turned off by a reload; restart tidewire to turn it off');
    return this.security.reload(next, by);
  }

  /** Starts listening, then the sources; resolves when every source has finished its snapshot. */
  async start(): Promise<{ port: number }> {
    const { port } = await this.distribution.listen();
    this.log.info({ port, epoch: this.store.epoch }, 'distribution service listening');
    try {
      for (const s of this.sources) await s.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info({ topics: this.store.size }, 'sources started');
    return { port };
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.sources.map((s) => s.stop()));
    await this.distribution.close();
  }
}

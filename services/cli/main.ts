/**
 * The `tidewire` command.
 *   tidewire start [--config <file>]   run the service (no config: the embedded demo)
 *   tidewire watch <selector> [--url]  print live values and deltas
 *   tidewire check --config <file>     verify everything a run needs, with what to fix
 *   tidewire slots [--config|--url]    list tidewire's replication slots, --drop one
 *   tidewire --help, tidewire <command> --help, tidewire --version
 */
import { parseArgs } from 'node:util';
import { TidewireError } from '../../core/errors.ts';
import { COMMANDS, type CommandName, commandUsage, usage, version } from './usage.ts';

/** What main() returns for a command that keeps running (start): its exit code is the shutdown's. */
const RUNNING = -1;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(usage());
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = rest[0];
    if (topic !== undefined && !isCommand(topic)) throw new TidewireError('USAGE', `unknown command "${topic}"\n${usage()}`);
    process.stdout.write(topic === undefined ? usage() : commandUsage(topic));
    return 0;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`tidewire ${version()}\n`);
    return 0;
  }
  if (!isCommand(command)) throw new TidewireError('USAGE', `unknown command "${command}"\n${usage()}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      drop: { type: 'string' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(commandUsage(command));
    return 0;
  }
  switch (command) {
    // Each command loads only its own modules: `check` and `slots` start fast and need no server code.
    case 'start':
      return (await import('./start.ts')).startCommand({ config: values.config, port: values.port === undefined ? undefined : Number(values.port) });
    case 'watch': {
      if (positionals.length !== 1) throw new TidewireError('USAGE', `watch takes one selector\n${commandUsage('watch')}`);
      // An empty TIDEWIRE_TOKEN is no token.
      const token = values.token ?? (process.env.TIDEWIRE_TOKEN || undefined);
      return (await import('./watch.ts')).watchCommand(positionals[0], { url: values.url ?? 'ws://127.0.0.1:8080/ws', token });
    }
    case 'check':
      return (await import('./check.ts')).checkCommand(values.config);
    case 'slots':
      return (await import('./slots.ts')).slotsCommand({ config: values.config, url: values.url, drop: values.drop, all: values.all, json: values.json });
  }
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code === RUNNING) return;
    process.exitCode = code;
    // The command is done: a client still retrying in the background (kafkajs after a timed-out
    // connect) must not hold the process. Exit once what was written has reached stdout and stderr.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  },
  (err: unknown) => {
    const code = err instanceof TidewireError && err.code === 'CONFIG_INVALID' ? 2 : 1;
    // Users get the message that says what to do, never a stack trace.
    if (err instanceof TidewireError) process.stderr.write(`tidewire: ${err.message}\n`);
    else if (err instanceof TypeError && (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const command = process.argv[2];
      process.stderr.write(`tidewire: ${err.message}\n${isCommand(command) ? commandUsage(command) : usage()}`);
    } else process.stderr.write(`tidewire: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
    // A start that fails ends the process: say so, rather than leave the reader to guess whether it retries.
    if (process.argv[2] === 'start') process.stderr.write(`tidewire start: could not start; exiting with code ${code}\n`);
    process.exitCode = code;
  },
);

/**
 * The `tidewire` command.
 *   tidewire start [--config <file>]   run the service (no config: the embedded demo)
 *   tidewire watch <selector> [--url]  print live values and deltas
 */
import { parseArgs } from 'node:util';
import { TidewireError } from '../errors.ts';
import { startCommand } from './start.ts';
import { watchCommand } from './watch.ts';

const USAGE = `usage:
  tidewire start [--config <file>] [--port <n>]   run tidewire (no --config: the embedded demo)
  tidewire watch <selector> [--url <ws url>]      print live values and deltas, e.g. tidewire watch 'orders/**'
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !command || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'start':
      return startCommand({ config: values.config, port: values.port === undefined ? undefined : Number(values.port) });
    case 'watch':
      if (positionals.length !== 1) throw new TidewireError('USAGE', `watch takes one selector\n${USAGE}`);
      return watchCommand(positionals[0], values.url ?? 'ws://127.0.0.1:8080/ws');
    default:
      throw new TidewireError('USAGE', `unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    // Users get the message that says what to do, never a stack trace.
    if (err instanceof TidewireError) process.stderr.write(`tidewire: ${err.message}\n`);
    else if (err instanceof TypeError && (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') process.stderr.write(`tidewire: ${err.message}\n${USAGE}`);
    else process.stderr.write(`tidewire: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = err instanceof TidewireError && err.code === 'CONFIG_INVALID' ? 2 : 1;
  },
);

/** Command-line flags of `npm run bench`. */

export interface BenchArgs {
  readonly quick: boolean;
  /** Suites to run; null for all. */
  readonly only: readonly string[] | null;
  readonly help: boolean;
  /** `--report`: only regenerate docs/BENCHMARKS.md and the charts from bench/results/latest.json. */
  readonly reportOnly: boolean;
}

export class ArgsError extends Error {}

/** Parses `--quick`, `--only a,b` (or `--only=a,b`) and `--help` against the known suite names. */
export function parseArgs(argv: readonly string[], suiteNames: readonly string[]): BenchArgs {
  let quick = false;
  let help = false;
  let reportOnly = false;
  let only: string[] | null = null;
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--only') only = [...(only ?? []), ...list(argv[++i])];
    else if (a.startsWith('--only=')) only = [...(only ?? []), ...list(a.slice('--only='.length))];
    else if (a === '--help' || a === '-h') help = true;
    else if (a === '--report') reportOnly = true;
    else throw new ArgsError(`unknown argument "${a}": use --quick and/or --only <suite,...> (suites: ${suiteNames.join(', ')}), or --report`);
  }
  if (only) {
    if (only.length === 0) throw new ArgsError(`--only needs suite names: ${suiteNames.join(', ')}`);
    const unknown = only.filter((n) => !suiteNames.includes(n));
    if (unknown.length > 0) throw new ArgsError(`unknown suite(s) ${unknown.join(', ')}: choose from ${suiteNames.join(', ')}`);
  }
  if (reportOnly && (quick || only)) throw new ArgsError('--report runs no suite: use it alone');
  return { quick, only, help, reportOnly };
}

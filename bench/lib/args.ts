/** Command-line flags of `npm run bench`. */

export interface BenchArgs {
  readonly quick: boolean;
  /** Suites to run; null for all. */
  readonly only: readonly string[] | null;
  readonly help: boolean;
  /** `--report`: only regenerate docs/BENCHMARKS.md and the charts from bench/results/latest.json. */
  readonly reportOnly: boolean;
  /** `--rows N`: the table size of the suites that take one (the state suite's restart table); null: the suite's own. */
  readonly rows: number | null;
}

export class ArgsError extends Error {}

/** Parses `--quick`, `--only a,b` (or `--only=a,b`), `--rows n` and `--help` against the known suite names. */
export function parseArgs(argv: readonly string[], suiteNames: readonly string[]): BenchArgs {
  let quick = false;
  let help = false;
  let reportOnly = false;
  let only: string[] | null = null;
  let rows: number | null = null;
  const count = (v: string | undefined) => {
    const n = Number((v ?? '').replace(/_/g, ''));
    if (!Number.isInteger(n) || n < 1) throw new ArgsError(`--rows needs a positive whole number, not "${v ?? ''}"`);
    return n;
  };
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--only') only = [...(only ?? []), ...list(argv[++i])];
    else if (a.startsWith('--only=')) only = [...(only ?? []), ...list(a.slice('--only='.length))];
    else if (a === '--help' || a === '-h') help = true;
    else if (a === '--report') reportOnly = true;
    else if (a === '--rows') rows = count(argv[++i]);
    else if (a.startsWith('--rows=')) rows = count(a.slice('--rows='.length));
    else throw new ArgsError(`unknown argument "${a}": use --quick, --only <suite,...> (suites: ${suiteNames.join(', ')}), --rows <n>, or --report`);
  }
  if (only) {
    if (only.length === 0) throw new ArgsError(`--only needs suite names: ${suiteNames.join(', ')}`);
    const unknown = only.filter((n) => !suiteNames.includes(n));
    if (unknown.length > 0) throw new ArgsError(`unknown suite(s) ${unknown.join(', ')}: choose from ${suiteNames.join(', ')}`);
  }
  if (reportOnly && (quick || only || rows !== null)) throw new ArgsError('--report runs no suite: use it alone');
  return { quick, only, help, reportOnly, rows };
}

/**
 * The contract between `bench/run.ts` and a benchmark suite. A suite is one file in
 * `bench/suites/<name>.ts` exporting `suite: Suite`; run.ts lists it in `bench/suites/index.ts`.
 * See bench/README.md ("Adding a suite").
 */

/** What run.ts gives every suite. */
export interface SuiteContext {
  /** `--quick`: small sizes, the whole run under two minutes (CI). Every suite must still run end to end. */
  readonly quick: boolean;
  /** Progress lines for the operator (stderr); not part of the results. */
  log(line: string): void;
  /** Folder for scratch files of this run (deleted afterwards). */
  readonly scratchDir: string;
  /** The repository root (absolute). */
  readonly root: string;
  /** `--rows N` when given: the table size for suites that take one (they say which); null otherwise. */
  readonly rows: number | null;
}

/** One measured figure: a number with its unit and, when it compares two systems, the ratio. */
export interface Figure {
  readonly name: string;
  readonly value: number;
  /** e.g. `changes/s`, `ms`, `MiB`, `bytes`, `%`. */
  readonly unit: string;
  /** Every repetition, when the value is a median of several. */
  readonly samples?: readonly number[];
}

/** A table for docs/BENCHMARKS.md: header plus rows of cells, already formatted. */
export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<readonly (string | number)[]>;
  /** Sentences printed under the table (what was measured, how, caveats). */
  readonly notes?: readonly string[];
}

/** One line of a chart: y against x. */
export interface Series {
  readonly label: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

/** A line chart rendered to docs/images/bench-<id>.svg. */
export interface Chart {
  /** File name part: docs/images/bench-<id>.svg. */
  readonly id: string;
  readonly title: string;
  readonly x: { readonly label: string; readonly log?: boolean };
  readonly y: { readonly label: string; readonly log?: boolean };
  readonly series: readonly Series[];
}

/** A stated target and whether this run met it. */
export interface Target {
  readonly description: string;
  readonly met: boolean;
  /** The measured figure, in words (`61,200 changes/s`). */
  readonly measured: string;
}

export interface SuiteResult {
  /** What ran, in one paragraph: workload, sizes, processes, what "one change" is. */
  readonly summary: string;
  /** The exact command that reproduces this suite's figures. */
  readonly command: string;
  readonly tables: readonly Table[];
  readonly charts?: readonly Chart[];
  readonly targets?: readonly Target[];
  /** Raw, machine-readable measurements (any JSON). */
  readonly data: Record<string, unknown>;
  /** Limits of this measurement worth reading before the numbers (load generator saturated, ...). */
  readonly caveats?: readonly string[];
}

export interface Suite {
  /** Lower-case, used by `--only` and as the results key. */
  readonly name: string;
  /** One line for `--help` and the docs. */
  readonly title: string;
  run(ctx: SuiteContext): Promise<SuiteResult>;
}

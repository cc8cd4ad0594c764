/** Number formatting for tables: thousands separators, fixed digits, ratios. */

export function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return '–';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function mib(bytes: number): string {
  return `${num(bytes / 2 ** 20, 0)} MiB`;
}

/** `2.4×` (a/b). */
export function ratio(a: number, b: number, digits = 1): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  return `${num(a / b, digits)}×`;
}

export function ms(x: number): string {
  if (!Number.isFinite(x)) return '–';
  return x < 10 ? `${num(x, 2)} ms` : x < 100 ? `${num(x, 1)} ms` : `${num(x, 0)} ms`;
}

/** Number formatting for the dashboard: fixed locale so numbers read the same on every screen. */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

export function formatCount(n: number): string {
  return integer.format(n);
}

/** Bytes in decimal units (kB = 1000 B), as network traffic is usually counted. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${integer.format(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 100 ? oneDecimal.format(v) : integer.format(v)} ${units[i]}`;
}

/** The share of `full` that `delivered` saved, as a percentage string ("—" before any traffic). */
export function formatSaving(delivered: number, full: number): string {
  if (full <= 0) return '—';
  return `${oneDecimal.format(Math.max(0, (1 - delivered / full) * 100))} %`;
}

/** One table cell's text: strings as they are, other JSON compactly; null is shown by the caller. */
export function formatCell(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? integer.format(v) : String(v);
  return JSON.stringify(v);
}

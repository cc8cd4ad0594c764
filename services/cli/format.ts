/** Numbers as people read them in a terminal: 1.2M rows, 180k rows/s, 3.4 MB, ETA 1:05. */

/** 950, 12.3k, 1.2M, 3.4G. */
export function formatCount(n: number): string {
  const abs = Math.abs(n);
  if (abs < 1000) return String(Math.round(n));
  for (const [size, unit] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const) {
    if (abs >= size) {
      const v = n / size;
      return `${v >= 100 ? Math.round(v) : v.toFixed(1).replace(/\.0$/, '')}${unit}`;
    }
  }
  return String(n);
}

/** 512 B, 12.3 kB, 1.2 MB (powers of 1000, like the counts). */
export function formatBytes(n: number): string {
  return n < 1000 ? `${Math.round(n)} B` : `${formatCount(n)}B`.replace(/([kMG])B$/, ' $1B');
}

/** 0:09, 12:34, 1:02:03. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A small inline-SVG area chart of updates per second; redrawn once a second, no chart library. */
import { formatCount } from './format.ts';

const SVG = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 120;
const PAD_TOP = 8;

export class RateChart {
  private readonly area: SVGPathElement;
  private readonly line: SVGPathElement;
  private readonly peakLabel: HTMLElement;

  constructor(
    private readonly svg: SVGSVGElement,
    peakLabel: HTMLElement,
    private readonly windowLabel: string,
  ) {
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    for (const y of [0.25, 0.5, 0.75]) {
      const grid = document.createElementNS(SVG, 'line');
      grid.setAttribute('x1', '0');
      grid.setAttribute('x2', String(W));
      grid.setAttribute('y1', String(PAD_TOP + (H - PAD_TOP) * y));
      grid.setAttribute('y2', String(PAD_TOP + (H - PAD_TOP) * y));
      grid.setAttribute('class', 'grid');
      svg.append(grid);
    }
    this.area = document.createElementNS(SVG, 'path');
    this.area.setAttribute('class', 'area');
    this.line = document.createElementNS(SVG, 'path');
    this.line.setAttribute('class', 'line');
    this.line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(this.area, this.line);
    this.peakLabel = peakLabel;
  }

  draw(values: readonly number[]): void {
    const peak = Math.max(0, ...values);
    const top = niceCeiling(peak);
    const step = W / Math.max(1, values.length - 1);
    let d = '';
    values.forEach((v, i) => {
      const x = (i * step).toFixed(1);
      const y = (H - (v / top) * (H - PAD_TOP)).toFixed(1);
      d += `${i === 0 ? 'M' : 'L'}${x},${y}`;
    });
    this.line.setAttribute('d', d);
    this.area.setAttribute('d', d ? `${d}L${W},${H}L0,${H}Z` : '');
    this.peakLabel.textContent = `${formatCount(top)}/s`;
    const now = values.at(-1) ?? 0;
    this.svg.setAttribute('aria-label', `Updates per second over the ${this.windowLabel}: now ${formatCount(now)}, peak ${formatCount(peak)}`);
  }
}

/** The chart's top: 1, 2 or 5 times a power of ten, at least 5, so the scale does not jitter. */
function niceCeiling(v: number): number {
  if (v <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

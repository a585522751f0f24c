// A dependency-free SVG bar chart: panels of horizontal grouped bars, one colour per
// series, the value printed at the end of each bar. Pure: data in, SVG text out.

export interface Bar {
  series: string;
  value: number | null;
  /** Printed after the value, e.g. "×0.41" or "gen 100 %". */
  note?: string;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface Panel {
  title: string;
  unit: string;
  groups: BarGroup[];
  /** Logarithmic axis (latencies spanning decades). */
  log?: boolean;
}

const PALETTE = ['#4269d0', '#efb118', '#ff725c', '#6cc5b0', '#3ca951', '#ff8ab7', '#a463f2', '#97bbf5'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1234567 -> "1.23M", 0.0123 -> "0.0123": short and with 3 significant digits. */
export function formatValue(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  if (a >= 100) return String(Math.round(v));
  return trim(v);
}

function trim(v: number): string {
  return String(Number(v.toPrecision(3)));
}

/** x position (0..width) of a value on a linear or log axis from 0 / min to max. */
export function scale(v: number, max: number, width: number, log: boolean, min = 0): number {
  if (!(max > 0) || !(v > 0)) return 0;
  if (!log) return (Math.min(v, max) / max) * width;
  const lo = Math.log10(min > 0 ? min : max / 1000);
  const hi = Math.log10(max);
  if (hi <= lo) return width;
  return Math.max(0, Math.min(1, (Math.log10(v) - lo) / (hi - lo))) * width;
}

export function renderSvg(title: string, panels: readonly Panel[], subtitle = ''): string {
  const width = 920;
  const labelW = 230;
  const barH = 16;
  const gap = 4;
  const groupGap = 12;
  const plotW = width - labelW - 250;
  const series = [...new Set(panels.flatMap((p) => p.groups.flatMap((g) => g.bars.map((b) => b.series))))];
  const color = (s: string): string => PALETTE[series.indexOf(s) % PALETTE.length];
  const out: string[] = [];
  let y = 30;
  out.push(`<text x="12" y="${y}" font-size="17" font-weight="bold">${escapeXml(title)}</text>`);
  if (subtitle) {
    y += 18;
    out.push(`<text x="12" y="${y}" font-size="11" fill="#555">${escapeXml(subtitle)}</text>`);
  }
  // legend
  y += 20;
  let lx = 12;
  for (const s of series) {
    out.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${color(s)}"/>`);
    out.push(`<text x="${lx + 16}" y="${y}" font-size="12">${escapeXml(s)}</text>`);
    lx += 24 + s.length * 7;
  }
  for (const p of panels) {
    y += 30;
    out.push(`<text x="12" y="${y}" font-size="14" font-weight="bold">${escapeXml(p.title)}</text>`);
    out.push(`<text x="${width - 12}" y="${y}" font-size="11" text-anchor="end" fill="#555">${escapeXml(p.unit)}${p.log ? ' (log scale)' : ''}</text>`);
    y += 10;
    const values = p.groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v): v is number => v !== null && v > 0);
    const max = values.length ? Math.max(...values) : 1;
    const min = values.length ? Math.min(...values) / 2 : 0;
    const top = y;
    for (const g of p.groups) {
      const gh = g.bars.length * (barH + gap);
      out.push(`<text x="${labelW - 8}" y="${y + gh / 2 + 4}" font-size="12" text-anchor="end">${escapeXml(g.label)}</text>`);
      for (const b of g.bars) {
        const w = b.value === null ? 0 : Math.max(1, scale(b.value, max, plotW, p.log ?? false, min));
        const text = b.value === null ? 'not run' : `${formatValue(b.value)}${b.note ? `  ${b.note}` : ''}`;
        out.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color(b.series)}"><title>${escapeXml(`${g.label} / ${b.series}: ${text}`)}</title></rect>`);
        out.push(`<text x="${(labelW + w + 5).toFixed(1)}" y="${y + barH - 4}" font-size="11">${escapeXml(text)}</text>`);
        y += barH + gap;
      }
      y += groupGap;
    }
    out.push(`<line x1="${labelW}" y1="${top - 4}" x2="${labelW}" y2="${y - groupGap}" stroke="#333"/>`);
  }
  y += 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

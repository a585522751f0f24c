// Markdown tables and number formatting for the reports. Pure.

export interface Table {
  title?: string;
  headers: string[];
  rows: string[][];
  /** Right-align these columns (numbers). Default: every column but the first. */
  alignRight?: boolean[];
}

export function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function markdownTable(t: Table): string {
  const align = t.alignRight ?? t.headers.map((_, i) => i > 0);
  const lines: string[] = [];
  if (t.title) lines.push(`**${t.title}**`, '');
  lines.push(`| ${t.headers.map(escapeCell).join(' | ')} |`);
  lines.push(`| ${align.map((r) => (r ? '---:' : '---')).join(' | ')} |`);
  for (const row of t.rows) lines.push(`| ${row.map(escapeCell).join(' | ')} |`);
  return lines.join('\n');
}

/** Thousands separators, fixed decimals; '—' for missing values. */
export function num(v: number | null | undefined, decimals = 0): string {
  if (v == null || !Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** A latency in ms with 2 significant decimals below 10 ms. */
export function ms(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return '—';
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

/** "×0.42", or '—' when the ratio could not be formed. */
export function times(r: number | null | undefined): string {
  if (r == null || !Number.isFinite(r)) return '—';
  return `×${r >= 10 ? r.toFixed(1) : r.toFixed(2)}`;
}

export function bytes(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(2)} GiB`;
  if (a >= 1024 ** 2) return `${(v / 1024 ** 2).toFixed(1)} MiB`;
  if (a >= 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${Math.round(v)} B`;
}

export function pct(v: number | null | undefined): string {
  return v == null || !Number.isFinite(v) ? '—' : `${Math.round(v)} %`;
}

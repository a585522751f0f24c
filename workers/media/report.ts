/**
 * The operator view as text: what the tiering would move (or moved), bytes per tier, and
 * the monthly cost per tier at the configured prices. Pure formatting, plus the progress
 * bar the CLI draws on stderr.
 */
import { tiers, type Tier } from './config.ts';
import type { TieringReport } from './tiering.ts';


export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function money(amount: number): string {
  return amount < 0.01 && amount > 0 ? amount.toFixed(6) : amount.toFixed(2);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('   ').trimEnd()).join('\n');
}

export function formatTieringReport(report: TieringReport, context: { driver: string }): string {
  const p = report.plan;
  const lines: string[] = [];
  const when = new Date(p.at).toISOString();
  lines.push(`media tiering ${report.dryRun ? '(dry run: nothing changed)' : '(applied)'} at ${when}, driver ${context.driver}`);
  lines.push(`${p.items} live items in ${p.blobs} stored blobs`);
  lines.push('');
  const after = report.dryRun ? p.bytesByTierAfter : report.totalsAfter.bytes;
  const costAfter = report.dryRun ? p.monthlyCostAfter : report.monthlyCostAfterRun;
  const sum = (r: Record<Tier, number>) => r.hot + r.warm + r.cold;
  lines.push(table([
    ['tier', 'objects', 'bytes', `${p.currency}/month`, report.dryRun ? 'bytes after' : 'bytes now', `${p.currency}/month after`],
    ...tiers.map((t) => [t, String(p.objectsByTier[t]), formatBytes(p.bytesByTier[t]), money(p.monthlyCost[t]), formatBytes(after[t]), money(costAfter[t])]),
    ['total', String(sum(p.objectsByTier)), formatBytes(sum(p.bytesByTier)), money(sum(p.monthlyCost)), formatBytes(sum(after)), money(sum(costAfter))],
  ]));
  lines.push('');
  if (p.moves.length === 0) lines.push(report.dryRun ? 'moves: none would move' : 'moves: none needed');
  else {
    lines.push(report.dryRun ? 'would move:' : 'planned moves:');
    for (const m of p.moves) lines.push(`  ${m.from} -> ${m.to}: ${m.objects} objects, ${formatBytes(m.bytes)}`);
  }
  lines.push(`retention: ${p.deletions.items} items past retention, ${formatBytes(p.deletions.bytesFreed)} freed`);
  lines.push(`abandoned uploads: ${p.abandonedUploads}`);
  if (!report.dryRun) {
    const o = report.outcome;
    lines.push(`done: ${o.moved} moved, ${o.restoresStarted} restores started, ${o.restoring} restoring, ${o.deleted} deleted, ${o.abandonedUploadsDropped} uploads dropped, ${o.failed} failed`);
    for (const m of report.remainingMoves) lines.push(`  still to move ${m.from} -> ${m.to}: ${m.objects} objects, ${formatBytes(m.bytes)}`);
  }
  if (p.changes.length > 0) {
    lines.push('');
    lines.push('changes (first ' + p.changes.length + '):');
    for (const c of p.changes) {
      lines.push(`  ${c.id}  ${c.content_type}  ${formatBytes(c.size)}  ${c.tier} -> ${c.target}  (${c.reasons.join('; ')})`);
    }
  }
  return lines.join('\n');
}

/** A progress bar on a stream: redrawn in place on a terminal, a line per 10% otherwise. */
export function progressBar(stream: NodeJS.WriteStream, label: string): { update(done: number, total: number): void; finish(): void } {
  const width = 30;
  let lastDecile = -1;
  let drawn = false;
  return {
    update(done, total) {
      const ratio = total === 0 ? 1 : Math.min(1, done / total);
      const text = `${label} [${'#'.repeat(Math.round(ratio * width)).padEnd(width, '.')}] ${Math.floor(ratio * 100)}% ${done}/${total}`;
      if (stream.isTTY) {
        stream.write(`\r${text}`);
        drawn = true;
      } else {
        const decile = Math.floor(ratio * 10);
        if (decile !== lastDecile) {
          lastDecile = decile;
          stream.write(`${text}\n`);
        }
      }
    },
    finish() {
      if (drawn) stream.write('\n');
    },
  };
}

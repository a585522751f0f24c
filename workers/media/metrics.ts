/**
 * The operator view as Prometheus gauges, on a Registry the caller passes in (the
 * broker's /metrics registry, or a fresh one in tests): the same figures the CLI prints.
 */
import { Gauge, type Registry } from 'prom-client';
import { tiers, type Tier } from './config.ts';
import type { TierTotals } from './repository.ts';
import type { TieringMoveSummary, TieringReport } from './tiering.ts';

export function createMediaMetrics(registry: Registry) {
  const registers = [registry];
  const m = {
    storedBytes: new Gauge({ name: 'chat_media_stored_bytes', help: 'Bytes stored per tier (after dedupe)', labelNames: ['tier'], registers }),
    storedObjects: new Gauge({ name: 'chat_media_stored_objects', help: 'Stored blobs per tier (after dedupe)', labelNames: ['tier'], registers }),
    monthlyCost: new Gauge({ name: 'chat_media_monthly_cost', help: 'Storage cost per month per tier at the configured prices (label currency)', labelNames: ['tier', 'currency'], registers }),
    pendingMoves: new Gauge({ name: 'chat_media_tiering_pending_moves', help: 'Blobs the rules would move, by from and to tier', labelNames: ['from', 'to'], registers }),
    pendingMoveBytes: new Gauge({ name: 'chat_media_tiering_pending_move_bytes', help: 'Bytes the rules would move, by from and to tier', labelNames: ['from', 'to'], registers }),
    pendingDeletions: new Gauge({ name: 'chat_media_retention_pending_items', help: 'Items past retention not deleted yet', registers }),
    lastRun: new Gauge({ name: 'chat_media_tiering_last_run_timestamp_seconds', help: 'End of the last applied tiering run', registers }),
    lastRunMoved: new Gauge({ name: 'chat_media_tiering_last_run_moved', help: 'Blobs moved by the last applied run', registers }),
    lastRunFailed: new Gauge({ name: 'chat_media_tiering_last_run_failed', help: 'Blobs or items the last applied run failed on', registers }),
  };

  const observeStore = (totals: TierTotals, cost: Record<Tier, number>, currency: string) => {
    for (const tier of tiers) {
      m.storedBytes.set({ tier }, totals.bytes[tier]);
      m.storedObjects.set({ tier }, totals.objects[tier]);
      m.monthlyCost.set({ tier, currency }, cost[tier]);
    }
  };
  const observePending = (moves: TieringMoveSummary[], deletions: number) => {
    m.pendingMoves.reset();
    m.pendingMoveBytes.reset();
    for (const move of moves) {
      m.pendingMoves.set({ from: move.from, to: move.to }, move.objects);
      m.pendingMoveBytes.set({ from: move.from, to: move.to }, move.bytes);
    }
    m.pendingDeletions.set(deletions);
  };

  return {
    ...m,
    /** Sets every gauge from a run: what a dry run would do, or where an applied run left things. */
    observeRun(report: TieringReport): void {
      const plan = report.plan;
      if (report.dryRun) {
        observeStore({ bytes: plan.bytesByTier, objects: plan.objectsByTier }, plan.monthlyCost, plan.currency);
        observePending(plan.moves, plan.deletions.items);
        return;
      }
      observeStore(report.totalsAfter, report.monthlyCostAfterRun, plan.currency);
      observePending(report.remainingMoves, plan.deletions.items - report.outcome.deleted);
      m.lastRun.set(report.finishedAt / 1000);
      m.lastRunMoved.set(report.outcome.moved);
      m.lastRunFailed.set(report.outcome.failed);
    },
  };
}

export type MediaMetrics = ReturnType<typeof createMediaMetrics>;

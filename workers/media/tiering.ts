/**
 * The tiering worker: on a node-cron schedule, once per cluster (run-lock.ts), it walks
 * every live media item blob by blob, asks the pure rules (tiering-rules.ts) where each
 * item belongs, and then
 *  1. tombstones items past retention (bytes deleted with their last reference);
 *  2. moves each blob to the hottest tier its remaining items need (a cold blob that must
 *     go up is restored first and moved on a later run);
 *  3. drops uploads that were never completed.
 * A dry run does the same walk and reports what would happen (the operator CLI).
 *
 * Memory stays bounded: items are read in pages ordered by (sha256, id), so all items of
 * one blob arrive together and a blob is decided as soon as its last item is read.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import type { MediaConfig, Tier } from './config.ts';
import { dropPendingUpload, moveBlob, tombstoneItem, type BlobLifecycleDeps } from './lifecycle.ts';
import type { MediaMetrics } from './metrics.ts';
import type { ObjectStore } from './object-store.ts';
import { abandonedUploads, tierTotals, type TierTotals } from './repository.ts';
import { withRunLock } from './run-lock.ts';
import {
  decideTier,
  hottestTier,
  type ConversationActivity,
  type OwnerActivity,
  type ReadState,
  type TieringDecision,
  type TieringTarget,
} from './tiering-rules.ts';

/** Advisory lock key of the tiering run (core/migrate.ts uses 7263541). */
export const tieringLockKey = 7263601;
const dayMs = 86_400_000;
const gib = 1024 ** 3;

export interface TieringWorkerDeps {
  db: Db;
  objects: ObjectStore;
  config: MediaConfig;
  clock?: Clock;
  log?: Logger;
  metrics?: MediaMetrics;
}

export interface TieringMoveSummary {
  from: Tier;
  to: Tier;
  objects: number;
  bytes: number;
}

/** One item whose decision changes something, for the operator's eyes. */
export interface TieringDecisionView {
  id: string;
  sha256: string;
  conv: string;
  content_type: string;
  size: number;
  tier: Tier;
  target: TieringTarget;
  reasons: string[];
}

export interface TieringPlan {
  at: number;
  items: number;
  blobs: number;
  moves: TieringMoveSummary[];
  deletions: { items: number; bytesFreed: number };
  abandonedUploads: number;
  objectsByTier: Record<Tier, number>;
  bytesByTier: Record<Tier, number>;
  /** Bytes per tier once the moves and deletions are done. */
  bytesByTierAfter: Record<Tier, number>;
  currency: string;
  monthlyCost: Record<Tier, number>;
  monthlyCostAfter: Record<Tier, number>;
  /** The first `detailLimit` decisions that change something. */
  changes: TieringDecisionView[];
}

export interface TieringOutcome {
  moved: number;
  restoresStarted: number;
  restoring: number;
  deleted: number;
  bytesFreed: number;
  abandonedUploadsDropped: number;
  failed: number;
}

export interface TieringReport {
  dryRun: boolean;
  plan: TieringPlan;
  outcome: TieringOutcome;
  /** Moves still to do after this run (restores in progress, failures); empty after a clean run. */
  remainingMoves: TieringMoveSummary[];
  /** Totals read back after an applied run (the plan's before a dry run), and their monthly cost. */
  totalsAfter: TierTotals;
  monthlyCostAfterRun: Record<Tier, number>;
  finishedAt: number;
}

export interface TieringRunOptions {
  dryRun?: boolean;
  /** Called after each page: items examined so far, items in total. */
  onProgress?: (done: number, total: number) => void;
  /** How many changing decisions the plan lists (default 50). */
  detailLimit?: number;
}

interface ItemRow {
  id: string;
  owner: string;
  conv: string;
  size: number;
  content_type: string;
  sha256: string;
  created_at: number;
  completed_at: number | null;
  last_access_at: number | null;
  blob_tier: Tier;
  blob_size: number;
}

interface BlobGroup {
  sha256: string;
  size: number;
  tier: Tier;
  items: { row: ItemRow; decision: TieringDecision }[];
}

interface BatchFacts {
  conversations: Map<string, ConversationActivity>;
  reads: Map<string, ReadState>;
  messageTs: Map<string, number>;
  owners: Map<string, OwnerActivity>;
}

export class TieringWorker {
  private readonly db: Db;
  private readonly objects: ObjectStore;
  private readonly config: MediaConfig;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly metrics?: MediaMetrics;
  private task?: ScheduledTask;

  constructor(deps: TieringWorkerDeps) {
    this.db = deps.db;
    this.objects = deps.objects;
    this.config = deps.config;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log ?? createLogger('silent');
    this.metrics = deps.metrics;
  }

  /** Schedules runs (media.tiering.schedule); no-op when tiering is disabled. */
  start(): ScheduledTask | undefined {
    if (!this.config.tiering.enabled) return undefined;
    const schedule = this.config.tiering.schedule;
    if (!cron.validate(schedule)) throw new Error(`media.tiering.schedule: invalid cron expression ${JSON.stringify(schedule)}`);
    this.task = cron.schedule(schedule, () => this.runScheduled(), { name: 'media-tiering', noOverlap: true });
    return this.task;
  }

  async stop(): Promise<void> {
    if (!this.task) return;
    await this.task.destroy();
    this.task = undefined;
  }

  /** One scheduled round: runs when this node gets the cluster lock, logs instead of throwing. */
  async runScheduled(): Promise<TieringReport | 'locked' | 'failed'> {
    try {
      const report = await this.run();
      if (report === 'locked') this.log.info('media tiering: another node holds the run lock; skipped');
      else this.log.info({ outcome: report.outcome }, 'media tiering: run finished');
      return report;
    } catch (err) {
      this.log.error({ err }, 'media tiering: run failed');
      return 'failed';
    }
  }

  /** A run under the cluster lock: 'locked' when another node (or run) has it. */
  async run(options: TieringRunOptions = {}): Promise<TieringReport | 'locked'> {
    const locked = await withRunLock(this.db, tieringLockKey, () => this.runUnlocked(options));
    return locked.acquired ? locked.value : 'locked';
  }

  /** The walk itself; dry runs need no lock (they change nothing) and use this directly. */
  async runUnlocked(options: TieringRunOptions = {}): Promise<TieringReport> {
    const dryRun = options.dryRun ?? false;
    const detailLimit = options.detailLimit ?? 50;
    const now = this.clock.now();
    const totals = await tierTotals(this.db);
    const plan = emptyPlan(now, totals, this.config);
    const outcome: TieringOutcome = { moved: 0, restoresStarted: 0, restoring: 0, deleted: 0, bytesFreed: 0, abandonedUploadsDropped: 0, failed: 0 };
    const remaining = new Map<string, TieringMoveSummary>();
    const lifecycle: BlobLifecycleDeps = { db: this.db, objects: this.objects, clock: this.clock, restoreDays: this.config.restoreDays };

    await this.scan(now, options.onProgress, async (group) => {
      plan.blobs += 1;
      plan.items += group.items.length;
      const doomed = group.items.filter((i) => i.decision.target === 'delete');
      const live = group.items.filter((i) => i.decision.target !== 'delete');
      const target = hottestTier(live.map((i) => i.decision.target as Tier));
      for (const i of group.items) {
        if (plan.changes.length < detailLimit && (i.decision.target === 'delete' || i.decision.target !== group.tier || target !== group.tier)) {
          plan.changes.push({ id: i.row.id, sha256: group.sha256, conv: i.row.conv, content_type: i.row.content_type, size: i.row.size, tier: group.tier, target: i.decision.target, reasons: i.decision.reasons });
        }
      }
      plan.deletions.items += doomed.length;
      plan.bytesByTierAfter[group.tier] -= group.size;
      if (!target) plan.deletions.bytesFreed += group.size;
      else plan.bytesByTierAfter[target] += group.size;
      if (target && target !== group.tier) addMove(plan.moves, group.tier, target, group.size);
      if (dryRun) return;

      for (const i of doomed) {
        try {
          const r = await tombstoneItem(lifecycle, { id: i.row.id, sha256: group.sha256 }, 'retention');
          if (r.deleted) outcome.deleted += 1;
          if (r.bytesFreed) outcome.bytesFreed += group.size;
        } catch (err) {
          outcome.failed += 1;
          this.log.warn({ err, media: i.row.id }, 'media tiering: could not delete an item past retention');
        }
      }
      if (!target || target === group.tier) return;
      try {
        const moved = await moveBlob(lifecycle, group.sha256, target);
        if (moved === 'moved') outcome.moved += 1;
        else if (moved === 'restore_started') outcome.restoresStarted += 1;
        else if (moved === 'restoring') outcome.restoring += 1;
        if (moved === 'restore_started' || moved === 'restoring') addMove(remaining, group.tier, target, group.size);
      } catch (err) {
        outcome.failed += 1;
        addMove(remaining, group.tier, target, group.size);
        this.log.warn({ err, sha256: group.sha256, from: group.tier, to: target }, 'media tiering: could not move a blob');
      }
    });

    const abandonedBefore = now - (this.config.uploadUrlTtlSeconds + this.config.tiering.abandonedUploadGraceSeconds) * 1000;
    for (;;) {
      const stale = await abandonedUploads(this.db, abandonedBefore, this.config.tiering.batchSize);
      plan.abandonedUploads += stale.length;
      if (dryRun || stale.length === 0) break;
      for (const upload of stale) {
        try {
          await dropPendingUpload(lifecycle, upload);
          outcome.abandonedUploadsDropped += 1;
        } catch (err) {
          outcome.failed += 1;
          this.log.warn({ err, media: upload.id }, 'media tiering: could not drop an abandoned upload');
        }
      }
      if (stale.length < this.config.tiering.batchSize || outcome.failed > 0) break;
    }

    plan.monthlyCostAfter = costOf(plan.bytesByTierAfter, this.config);
    const totalsAfter = dryRun ? totals : await tierTotals(this.db);
    const report: TieringReport = {
      dryRun,
      plan,
      outcome,
      remainingMoves: dryRun ? plan.moves : [...remaining.values()],
      totalsAfter,
      monthlyCostAfterRun: costOf(totalsAfter.bytes, this.config),
      finishedAt: this.clock.now(),
    };
    this.metrics?.observeRun(report);
    return report;
  }

  // ---- the walk ------------------------------------------------------------------------

  private async scan(now: number, onProgress: TieringRunOptions['onProgress'], visit: (group: BlobGroup) => Promise<void>): Promise<void> {
    const total = Number((await this.db.query<{ n: number }>("select count(*)::int8 as n from media where state = 'complete'")).rows[0]!.n);
    let cursor: [string, string] = ['', ''];
    let done = 0;
    let group: BlobGroup | undefined;
    onProgress?.(0, total);
    for (;;) {
      const page = await this.db.query<ItemRow>(
        `select m.id, m.owner, m.conv, m.size, m.content_type, m.sha256, m.created_at, m.completed_at, m.last_access_at,
                b.tier as blob_tier, b.size as blob_size
         from media m join media_blobs b on b.sha256 = m.sha256
         where m.state = 'complete' and (m.sha256, m.id) > ($1, $2)
         order by m.sha256, m.id limit $3`,
        [cursor[0], cursor[1], this.config.tiering.batchSize],
      );
      if (page.rows.length === 0) break;
      const facts = await this.gatherFacts(page.rows, now);
      for (const row of page.rows) {
        if (group && group.sha256 !== row.sha256) {
          await visit(group);
          group = undefined;
        }
        group ??= { sha256: row.sha256, size: Number(row.blob_size), tier: row.blob_tier, items: [] };
        group.items.push({ row, decision: this.decide(row, facts, now) });
      }
      const last = page.rows[page.rows.length - 1]!;
      cursor = [last.sha256, last.id];
      done += page.rows.length;
      onProgress?.(Math.min(done, total), total);
      if (page.rows.length < this.config.tiering.batchSize) break;
    }
    if (group) await visit(group);
  }

  private decide(row: ItemRow, facts: BatchFacts, now: number): TieringDecision {
    const conversation = facts.conversations.get(row.conv) ?? { kind: 'group', memberCount: 0, lastActivityAt: Number(row.created_at), messagesLast7Days: 0 };
    return decideTier(
      {
        id: row.id,
        size: Number(row.size),
        contentType: row.content_type,
        createdAt: Number(row.created_at),
        messageTs: facts.messageTs.get(row.id),
        lastAccessAt: row.last_access_at === null ? undefined : Number(row.last_access_at),
      },
      conversation,
      facts.reads.get(row.id) ?? { attached: false, readByAll: false },
      facts.owners.get(row.owner) ?? {},
      now,
      this.config.tiering.rules,
    );
  }

  /** The inputs of the rules for one page: conversations, read positions, carrying messages, owners. */
  private async gatherFacts(rows: ItemRow[], now: number): Promise<BatchFacts> {
    const convs = [...new Set(rows.map((r) => r.conv))];
    const ids = rows.map((r) => r.id);
    const owners = [...new Set(rows.map((r) => r.owner))];
    const [conversations, minReads, carriers, seen] = await Promise.all([
      this.db.query<{ id: string; kind: ConversationActivity['kind']; member_count: number; last_activity: number; recent: number }>(
        `select c.id, c.kind, c.member_count, c.last_activity,
           (select count(*) from messages x where x.conv = c.id and x.kind = 'msg' and x.ts >= $2)::int8 as recent
         from conversations c where c.id = any($1::text[])`,
        [convs, now - 7 * dayMs],
      ),
      this.db.query<{ conv: string; min_read: number }>('select conv, min(read_seq)::int8 as min_read from members where conv = any($1::text[]) group by conv', [convs]),
      // The first message that carries each item (ingest only accepts an item in its own conversation).
      this.db.query<{ id: string; seq: number; ts: number }>(
        `select e.id, min(m.seq)::int8 as seq, min(m.ts)::int8 as ts
         from messages m cross join lateral jsonb_array_elements_text(m.media) as e(id)
         where m.conv = any($1::text[]) and m.media is not null and m.kind = 'msg' and e.id = any($2::text[])
         group by e.id`,
        [convs, ids],
      ),
      this.db.query<{ id: string; last_seen: number | null }>('select id, last_seen from users where id = any($1::text[])', [owners]),
    ]);
    const facts: BatchFacts = { conversations: new Map(), reads: new Map(), messageTs: new Map(), owners: new Map() };
    for (const c of conversations.rows) {
      facts.conversations.set(c.id, { kind: c.kind, memberCount: Number(c.member_count), lastActivityAt: Number(c.last_activity), messagesLast7Days: Number(c.recent) });
    }
    const minRead = new Map(minReads.rows.map((r) => [r.conv, Number(r.min_read)]));
    const carrier = new Map(carriers.rows.map((r) => [r.id, { seq: Number(r.seq), ts: Number(r.ts) }]));
    for (const row of rows) {
      const c = carrier.get(row.id);
      if (c) facts.messageTs.set(row.id, c.ts);
      const lowest = minRead.get(row.conv);
      facts.reads.set(row.id, { attached: !!c, readByAll: !!c && lowest !== undefined && lowest >= c.seq });
    }
    for (const u of seen.rows) facts.owners.set(u.id, u.last_seen === null ? {} : { lastSeenAt: Number(u.last_seen) });
    return facts;
  }
}

function emptyPlan(now: number, totals: TierTotals, config: MediaConfig): TieringPlan {
  return {
    at: now,
    items: 0,
    blobs: 0,
    moves: [],
    deletions: { items: 0, bytesFreed: 0 },
    abandonedUploads: 0,
    objectsByTier: { ...totals.objects },
    bytesByTier: { ...totals.bytes },
    bytesByTierAfter: { ...totals.bytes },
    currency: config.prices.currency,
    monthlyCost: costOf(totals.bytes, config),
    monthlyCostAfter: costOf(totals.bytes, config),
    changes: [],
  };
}

/** Price per GiB-month (what AWS bills as "GB") times stored GiB. */
export function costOf(bytes: Record<Tier, number>, config: MediaConfig): Record<Tier, number> {
  const p = config.prices.perGbMonth;
  return { hot: (bytes.hot / gib) * p.hot, warm: (bytes.warm / gib) * p.warm, cold: (bytes.cold / gib) * p.cold };
}

function addMove(into: TieringMoveSummary[] | Map<string, TieringMoveSummary>, from: Tier, to: Tier, bytes: number): void {
  const key = `${from}>${to}`;
  const existing = Array.isArray(into) ? into.find((m) => m.from === from && m.to === to) : into.get(key);
  if (existing) {
    existing.objects += 1;
    existing.bytes += bytes;
    return;
  }
  const created = { from, to, objects: 1, bytes };
  if (Array.isArray(into)) into.push(created);
  else into.set(key, created);
}

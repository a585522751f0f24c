/**
 * The delivery worker's handler: turns one delivery job into publishes. Fan-out on write
 * publishes to each member's inbox; fan-out on read once to group/{conv}. Where those
 * publishes go is the router's business: this process's broker in embedded mode, the
 * broker nodes holding the recipients' connections in cluster mode.
 */
import { inboxTopic } from '../core/events.ts';
import { groupTopic } from '../core/fanout.ts';
import type { Metrics } from '../core/metrics.ts';
import type { MembershipCache } from '../broker/membership.ts';
import type { DeliveryJob } from './delivery-queue.ts';

/** Publishes one event on each topic, wherever the topic's subscribers are. */
export type RoutePublish = (topics: string[], event: Record<string, unknown>) => Promise<void>;

export class Deliverer {
  constructor(
    private readonly members: MembershipCache,
    private readonly route: RoutePublish,
    private readonly metrics?: Metrics,
  ) {}

  /** The recipients' topics of a job (pure apart from the member lookup). */
  async topicsOf(job: DeliveryJob): Promise<string[]> {
    const topics = new Set<string>(job.topics ?? []);
    for (const u of job.users ?? []) topics.add(inboxTopic(u));
    if (job.conv !== undefined) {
      // A conv event changed the member list: read it fresh (another process may have
      // changed it), so that an added member gets its own member_added event.
      if (job.event.type === 'conv') this.members.invalidate(job.conv);
      if (job.fanout === 'read') topics.add(groupTopic(job.conv));
      else for (const u of (await this.members.members(job.conv)).keys()) topics.add(inboxTopic(u));
    }
    return [...topics];
  }

  async deliver(job: DeliveryJob): Promise<void> {
    const topics = await this.topicsOf(job);
    await this.route(topics, job.event);
    this.metrics?.deliveries.inc({ mode: job.fanout ?? 'direct' }, topics.length);
    this.metrics?.deliveriesPerMessage.observe(topics.length);
  }
}

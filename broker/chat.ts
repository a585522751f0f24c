/**
 * The message service: every request a device publishes on chat/{user}/{device}/out
 * comes through `handle`, which validates, authorizes, persists, acknowledges and hands
 * the result to delivery. `handle` resolves only when the request's effects are
 * committed, and the broker holds the sender's PUBACK until then (DESIGN section 3.1).
 * It never rejects: a bad or forbidden request becomes an `error` event to the device.
 */
import { ChatError, errorEvent, toChatError } from '../core/errors.ts';
import { parseRequest, referencedSeq, type ReceiptRequest, type RpcRequest, type SendRequest } from '../core/protocol.ts';
import { deviceTopic, messageEvent } from '../core/events.ts';
import type { ChatStore, MessageRow } from '../core/store.ts';
import type { Clock } from '../core/clock.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Logger } from '../core/log.ts';
import type { DeliveryJob, DeliveryQueue } from '../workers/delivery-queue.ts';
import { GroupCommitter } from './group-commit.ts';
import { MembershipCache, blocksKey } from './membership.ts';
import { rpcMethods, type RpcContext } from './rpc.ts';

export interface Device {
  user: string;
  device: string;
}

export type Publish = (topic: string, event: Record<string, unknown>, opts?: { qos?: 0 | 1; retain?: boolean }) => Promise<void>;

/** Extension points other services plug into (media attachments, rate limits). */
export interface ChatHooks {
  checkAttachable?(user: string, conv: string, mediaIds: string[]): Promise<void>;
  /** Throws ChatError('rate_limited') to refuse a request before any store work ('invalid': unreadable, counted too). */
  admit?(who: Device, kind: 'send' | 'receipt' | 'rpc' | 'invalid', bytes: number): Promise<void>;
  rpc?: Record<string, (ctx: RpcContext, params: Record<string, unknown>) => Promise<unknown>>;
  /** A membership change committed: other processes' member caches must forget `conv`. */
  membersChanged?(conv: string): void;
}

export interface ChatServiceOptions {
  maxPayloadBytes: number;
  fanoutWriteMax: number;
}

export class ChatService {
  readonly members: MembershipCache;
  private readonly committer: GroupCommitter;

  constructor(
    readonly store: ChatStore,
    private readonly queue: DeliveryQueue,
    readonly publish: Publish,
    readonly clock: Clock,
    readonly options: ChatServiceOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    readonly hooks: ChatHooks = {},
  ) {
    this.members = new MembershipCache(store, clock);
    this.committer = new GroupCommitter(store, metrics);
  }

  async handle(who: Device, payload: Buffer): Promise<void> {
    const parsed = parseRequest(payload, this.options.maxPayloadBytes);
    try {
      if (parsed.error) {
        await this.hooks.admit?.(who, 'invalid', payload.length);
        throw parsed.error;
      }
      const req = parsed.request!;
      this.metrics.messagesIn.inc({ type: req.type });
      await this.hooks.admit?.(who, req.type, payload.length);
      switch (req.type) {
        case 'send':
          return await this.send(who, req);
        case 'receipt':
          return await this.receipt(who, req);
        case 'rpc':
          return await this.rpc(who, req);
      }
    } catch (err) {
      const chatError = toChatError(err);
      if (chatError.code === 'internal') this.log.error({ err, user: who.user, device: who.device }, 'request failed');
      this.metrics.errors.inc({ code: chatError.code });
      await this.toDevice(who, errorEvent(chatError, parsed.ref)).catch(() => {});
    }
  }

  toDevice(who: Device, event: Record<string, unknown>): Promise<void> {
    return this.publish(deviceTopic(who.user, who.device), event);
  }

  private async send(who: Device, req: SendRequest): Promise<void> {
    const now = this.clock.now();
    let conv: string;
    if (req.to !== undefined) {
      if (!(await this.members.userExists(req.to))) throw new ChatError('not_found', `no user ${req.to}`);
      if (req.to !== who.user && (await this.members.blockedBetween(who.user, req.to))) {
        throw new ChatError('blocked', `you cannot message ${req.to}`);
      }
      conv = await this.members.dm(who.user, req.to, now);
    } else {
      conv = req.conv!;
      const role = await this.members.role(conv, who.user);
      const c = await this.members.info(conv);
      if (!c) throw new ChatError('not_found', `no conversation ${conv}`);
      if (!role) throw new ChatError('not_member', `you are not a member of ${conv}`);
      if ((c.announce_only || c.kind === 'channel') && role === 'member') {
        throw new ChatError('forbidden', `only admins may post in ${conv}`);
      }
      if (c.kind === 'dm') {
        const peer = [...(await this.members.members(conv)).keys()].find((u) => u !== who.user);
        if (peer && (await this.members.blockedBetween(who.user, peer))) throw new ChatError('blocked', `you cannot message ${peer}`);
      }
    }
    await this.checkReferences(who, conv, req);
    if (req.media?.length) {
      if (!this.hooks.checkAttachable) throw new ChatError('bad_request', 'media is not enabled on this server');
      await this.hooks.checkAttachable(who.user, conv, req.media);
    }
    const result = await this.committer.submit({
      conv,
      sender: who.user,
      clientId: req.id,
      body: req.body,
      replyTo: req.reply_to,
      media: req.media,
      ts: now,
    });
    if (!result.duplicate) {
      this.metrics.messagesStored.inc();
      const row: MessageRow = {
        conv,
        seq: result.seq,
        sender: who.user,
        client_id: req.id,
        kind: 'msg',
        body: req.body,
        reply_to: req.reply_to ?? null,
        media: req.media ?? null,
        ts: result.ts,
      };
      await this.queue.enqueue([{ conv, fanout: result.fanout, event: messageEvent(row) }]);
    }
    await this.toDevice(who, { type: 'ack', id: req.id, conv: result.conv, seq: result.seq, ts: result.ts });
  }

  /** Replies, edits, deletes and reactions must point at an existing message; edits and deletes at one's own. */
  private async checkReferences(who: Device, conv: string, req: SendRequest): Promise<void> {
    if (req.reply_to !== undefined && !(await this.store.getMessage(conv, req.reply_to))) {
      throw new ChatError('not_found', `no message ${req.reply_to} in ${conv}`);
    }
    const ref = referencedSeq(req.body);
    if (!ref) return;
    const target = await this.store.getMessage(conv, ref.seq);
    if (!target || target.kind !== 'msg') throw new ChatError('not_found', `no message ${ref.seq} in ${conv}`);
    if (ref.kind !== 'react' && target.sender !== who.user) {
      throw new ChatError('forbidden', `only the author may ${ref.kind} message ${ref.seq}`);
    }
  }

  private async receipt(who: Device, req: ReceiptRequest): Promise<void> {
    if (!(await this.members.isMember(req.conv, who.user))) throw new ChatError('not_member', `you are not a member of ${req.conv}`);
    const c = await this.store.getConversation(req.conv);
    if (!c || req.seq > c.last_seq) throw new ChatError('bad_request', `seq ${req.seq} is beyond the last message of ${req.conv}`);
    const changed = await this.store.updateReceipt(req.conv, who.user, req.seq, req.status);
    if (!changed) return;
    // Tell the authors of the messages it covers and the reader's other devices.
    const senders = await this.store.sendersBetween(req.conv, changed.previous, req.seq);
    const users = [...new Set([...senders.filter((s) => s !== who.user), who.user])];
    await this.queue.enqueue([{ users, event: { type: 'receipt', conv: req.conv, user: who.user, seq: req.seq, status: req.status } }]);
  }

  private async rpc(who: Device, req: RpcRequest): Promise<void> {
    const method = this.hooks.rpc?.[req.method] ?? rpcMethods[req.method];
    if (!method) throw new ChatError('bad_request', `unknown method ${req.method}`);
    const result = await method({ who, chat: this }, req.params);
    await this.toDevice(who, { type: 'rpc', ref: req.id, result: result ?? {} });
  }

  /** A block between a and b was added or removed: forget the cached state everywhere. */
  blocksChanged(a: string, b: string): void {
    const key = blocksKey(a, b);
    this.members.invalidate(key);
    this.hooks.membersChanged?.(key);
  }

  /** Delivers conv events of a membership change: to current members' inboxes and to removed users. */
  async deliverConvEvents(conv: string, events: MessageRow[], removed: string[]): Promise<void> {
    this.members.invalidate(conv);
    this.hooks.membersChanged?.(conv);
    for (const e of events) {
      if (e.body.event === 'fanout_changed') this.metrics.fanoutSwitches.inc({ mode: e.body.topic ? 'read' : 'write' });
    }
    const jobs: DeliveryJob[] = events.map((e) => ({ conv, fanout: 'write', users: removed, event: messageEvent(e) }));
    await this.queue.enqueue(jobs);
  }
}

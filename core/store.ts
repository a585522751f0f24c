/**
 * The chat store: every read and write of users, devices, conversations, members and
 * messages, on top of the Db interface (Postgres or PGlite, same SQL). Messages are
 * append-only; a conversation's `last_seq` row is the lock that keeps its seq gap-free
 * under concurrent writers, also across processes.
 */
import { randomUUID } from 'node:crypto';
import type { Db, SqlClient } from './db.ts';
import { ChatError } from './errors.ts';
import { decideFanout, type ConvKind, type FanoutMode } from './fanout.ts';

export type Role = 'owner' | 'admin' | 'member';

export interface UserRow {
  id: string;
  password_hash: string;
  name: string | null;
  about: string | null;
  avatar: string | null;
  hide_last_seen: boolean;
  last_seen: number | null;
}

export interface DeviceRow {
  user_id: string;
  device_id: string;
  kind: 'session' | 'iot';
  token_id: string | null;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface ConversationRow {
  id: string;
  kind: ConvKind;
  name: string | null;
  last_seq: number;
  announce_only: boolean;
  fanout: FanoutMode;
  member_count: number;
  last_activity: number;
}

export interface MessageRow {
  conv: string;
  seq: number;
  sender: string;
  client_id: string;
  kind: 'msg' | 'conv';
  body: Record<string, unknown>;
  reply_to: number | null;
  media: string[] | null;
  ts: number;
}

export interface NewMessage {
  conv: string;
  sender: string;
  clientId: string;
  body: Record<string, unknown>;
  replyTo?: number;
  media?: string[];
  ts: number;
}

export interface AppendResult {
  conv: string;
  seq: number;
  ts: number;
  /** true when (sender, clientId) was stored before: nothing new was written. */
  duplicate: boolean;
  /** the delivery mode in force when the message was committed. */
  fanout: FanoutMode;
}

export interface MembershipChange {
  events: MessageRow[];
  fanout: FanoutMode;
  fanoutChanged: boolean;
  /** users whose membership ended with this change (they still get its event). */
  removed: string[];
}

export interface ConversationSummary {
  conv: string;
  kind: ConvKind;
  name: string | null;
  members: number;
  last_seq: number;
  read_seq: number;
  delivered_seq: number;
  unread: number;
  fanout: FanoutMode;
  peer?: string;
}

const messageColumns = 'conv, seq, sender, client_id, kind, body, reply_to, media, ts';

function parseJson<T>(v: unknown): T {
  // pg parses jsonb already; PGlite too. Strings only appear for text casts.
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

function toMessage(r: Record<string, unknown>): MessageRow {
  return {
    conv: r.conv as string,
    seq: Number(r.seq),
    sender: r.sender as string,
    client_id: r.client_id as string,
    kind: r.kind as 'msg' | 'conv',
    body: parseJson<Record<string, unknown>>(r.body),
    reply_to: r.reply_to === null ? null : Number(r.reply_to),
    media: r.media === null ? null : parseJson<string[]>(r.media),
    ts: Number(r.ts),
  };
}

export function dmKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

export class ChatStore {
  constructor(readonly db: Db) {}

  // ---- users and devices ------------------------------------------------------

  async createUser(id: string, passwordHash: string, now: number): Promise<boolean> {
    const r = await this.db.query(
      'insert into users (id, password_hash, created_at) values ($1, $2, $3) on conflict (id) do nothing',
      [id, passwordHash, now],
    );
    return r.rowCount === 1;
  }

  async getUser(id: string): Promise<UserRow | undefined> {
    const r = await this.db.query<UserRow>(
      'select id, password_hash, name, about, avatar, hide_last_seen, last_seen from users where id = $1',
      [id],
    );
    return r.rows[0];
  }

  async usersExist(ids: string[]): Promise<string[]> {
    const r = await this.db.query<{ id: string }>('select id from users where id = any($1::text[])', [ids]);
    return r.rows.map((x) => x.id);
  }

  async setProfile(id: string, p: { name?: string; about?: string; avatar?: string; hide_last_seen?: boolean }): Promise<void> {
    await this.db.query(
      `update users set name = coalesce($2, name), about = coalesce($3, about), avatar = coalesce($4, avatar),
         hide_last_seen = coalesce($5, hide_last_seen) where id = $1`,
      [id, p.name ?? null, p.about ?? null, p.avatar ?? null, p.hide_last_seen ?? null],
    );
  }

  async setLastSeen(id: string, ts: number): Promise<void> {
    await this.db.query('update users set last_seen = greatest(coalesce(last_seen, 0), $2) where id = $1', [id, ts]);
  }

  async upsertDevice(d: { user: string; device: string; kind: 'session' | 'iot'; tokenId?: string; expiresAt?: number; now: number }): Promise<void> {
    await this.db.query(
      `insert into devices (user_id, device_id, kind, token_id, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)
       on conflict (user_id, device_id) do update set kind = excluded.kind, token_id = excluded.token_id,
         expires_at = excluded.expires_at, revoked_at = null`,
      [d.user, d.device, d.kind, d.tokenId ?? null, d.expiresAt ?? null, d.now],
    );
  }

  async getDevice(user: string, device: string): Promise<DeviceRow | undefined> {
    const r = await this.db.query<DeviceRow>(
      'select user_id, device_id, kind, token_id, expires_at, revoked_at from devices where user_id = $1 and device_id = $2',
      [user, device],
    );
    return r.rows[0];
  }

  /** Revokes a device and every refresh token of it. Returns false if there was none. */
  async revokeDevice(user: string, device: string, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const r = await tx.query('update devices set revoked_at = $3 where user_id = $1 and device_id = $2 and revoked_at is null', [user, device, now]);
      await tx.query('update refresh_tokens set revoked_at = $3 where user_id = $1 and device_id = $2 and revoked_at is null', [user, device, now]);
      return r.rowCount > 0;
    });
  }

  async insertRefreshToken(t: { id: string; family: string; user: string; device: string; hash: string; expiresAt: number; now: number }): Promise<void> {
    await this.db.query(
      `insert into refresh_tokens (id, family, user_id, device_id, token_hash, expires_at, created_at)
       values ($1, $2, $3, $4, $5, $6, $7)`,
      [t.id, t.family, t.user, t.device, t.hash, t.expiresAt, t.now],
    );
  }

  /**
   * Marks a refresh token used (rotation). A token used twice means it was stolen: the
   * whole family is revoked and 'reused' returned.
   */
  async consumeRefreshToken(id: string, hash: string, now: number): Promise<
    { status: 'ok'; user: string; device: string; family: string } | { status: 'reused'; user: string; device: string } | { status: 'invalid' }
  > {
    return this.db.transaction(async (tx) => {
      const r = await tx.query<{ family: string; user_id: string; device_id: string; token_hash: string; expires_at: number; used_at: number | null; revoked_at: number | null }>(
        'select family, user_id, device_id, token_hash, expires_at, used_at, revoked_at from refresh_tokens where id = $1 for update',
        [id],
      );
      const row = r.rows[0];
      if (!row || row.token_hash !== hash) return { status: 'invalid' as const };
      if (row.used_at !== null) {
        await tx.query('update refresh_tokens set revoked_at = $2 where family = $1 and revoked_at is null', [row.family, now]);
        return { status: 'reused' as const, user: row.user_id, device: row.device_id };
      }
      if (row.revoked_at !== null || row.expires_at < now) return { status: 'invalid' as const };
      await tx.query('update refresh_tokens set used_at = $2 where id = $1', [id, now]);
      return { status: 'ok' as const, user: row.user_id, device: row.device_id, family: row.family };
    });
  }

  // ---- conversations ------------------------------------------------------------

  async getConversation(conv: string): Promise<ConversationRow | undefined> {
    const r = await this.db.query<ConversationRow>(
      'select id, kind, name, last_seq, announce_only, fanout, member_count, last_activity from conversations where id = $1',
      [conv],
    );
    return r.rows[0];
  }

  async findDm(a: string, b: string): Promise<string | undefined> {
    const r = await this.db.query<{ id: string }>('select id from conversations where dm_key = $1', [dmKey(a, b)]);
    return r.rows[0]?.id;
  }

  /** Opens (or finds) the 1:1 conversation of a and b. */
  async openDm(a: string, b: string, now: number): Promise<string> {
    const existing = await this.findDm(a, b);
    if (existing) return existing;
    return this.db.transaction(async (tx) => {
      const id = `c_${randomUUID().replace(/-/g, '')}`;
      const ins = await tx.query(
        `insert into conversations (id, kind, dm_key, member_count, created_by, created_at, last_activity)
         values ($1, 'dm', $2, $3, $4, $5, $5) on conflict (dm_key) do nothing`,
        [id, dmKey(a, b), a === b ? 1 : 2, a, now],
      );
      if (ins.rowCount === 0) {
        const r = await tx.query<{ id: string }>('select id from conversations where dm_key = $1', [dmKey(a, b)]);
        return r.rows[0]!.id;
      }
      await tx.query(
        `insert into members (conv, user_id, role, joined_at) select $1, u, 'member', $3 from unnest($2::text[]) as u`,
        [id, [...new Set([a, b])], now],
      );
      return id;
    });
  }

  async createGroup(g: { owner: string; name: string; members: string[]; kind: 'group' | 'channel'; now: number; fanoutWriteMax: number }): Promise<{ conv: string; event: MessageRow; fanout: FanoutMode }> {
    const id = `c_${randomUUID().replace(/-/g, '')}`;
    const users = [...new Set([g.owner, ...g.members])];
    const fanout = decideFanout(g.kind, users.length, g.fanoutWriteMax);
    return this.db.transaction(async (tx) => {
      await tx.query(
        `insert into conversations (id, kind, name, member_count, fanout, created_by, created_at, last_activity, last_seq)
         values ($1, $2, $3, $4, $5, $6, $7, $7, 1)`,
        [id, g.kind, g.name, users.length, fanout, g.owner, g.now],
      );
      await tx.query(
        `insert into members (conv, user_id, role, joined_at)
         select $1, u, case when u = $3 then 'owner' else 'member' end, $4 from unnest($2::text[]) as u`,
        [id, users, g.owner, g.now],
      );
      const body: Record<string, unknown> = { event: 'created', by: g.owner, name: g.name, kind: g.kind, members: users };
      // Members of a group served on read learn its topic from the event itself.
      if (fanout === 'read') body.topic = `group/${id}`;
      const event = await insertEvent(tx, id, 1, g.owner, body, g.now);
      return { conv: id, event, fanout };
    });
  }

  async getMembers(conv: string): Promise<{ user: string; role: Role }[]> {
    const r = await this.db.query<{ user_id: string; role: Role }>('select user_id, role from members where conv = $1 order by user_id', [conv]);
    return r.rows.map((m) => ({ user: m.user_id, role: m.role }));
  }

  async getMember(conv: string, user: string): Promise<{ role: Role; read_seq: number; delivered_seq: number } | undefined> {
    const r = await this.db.query<{ role: Role; read_seq: number; delivered_seq: number }>(
      'select role, read_seq, delivered_seq from members where conv = $1 and user_id = $2',
      [conv, user],
    );
    return r.rows[0];
  }

  async sharesConversation(a: string, b: string): Promise<boolean> {
    const r = await this.db.query(
      'select 1 from members m1 join members m2 on m1.conv = m2.conv where m1.user_id = $1 and m2.user_id = $2 limit 1',
      [a, b],
    );
    return r.rowCount > 0;
  }

  /** Users who share at least one conversation with `user` (presence audience). */
  async contactsOf(user: string): Promise<string[]> {
    const r = await this.db.query<{ user_id: string }>(
      'select distinct m2.user_id from members m1 join members m2 on m1.conv = m2.conv where m1.user_id = $1 and m2.user_id <> $1',
      [user],
    );
    return r.rows.map((x) => x.user_id);
  }

  /**
   * Applies a membership or settings change and appends its conv events, all in one
   * transaction under the conversation's row lock, so events take gap-free seqs and the
   * fan-out mode changes exactly at the event that crosses the threshold.
   */
  async changeMembership(c: {
    conv: string;
    by: string;
    add?: string[];
    remove?: string[];
    role?: { user: string; role: Role };
    settings?: { name?: string; announce_only?: boolean };
    now: number;
    fanoutWriteMax: number;
  }): Promise<MembershipChange> {
    return this.db.transaction(async (tx) => {
      const convRow = (await tx.query<ConversationRow>(
        'select id, kind, name, last_seq, announce_only, fanout, member_count, last_activity from conversations where id = $1 for update',
        [c.conv],
      )).rows[0];
      if (!convRow) throw new ChatError('not_found', `no conversation ${c.conv}`);
      const bodies: Record<string, unknown>[] = [];
      const removed: string[] = [];
      if (c.add?.length) {
        const r = await tx.query<{ user_id: string }>(
          `insert into members (conv, user_id, role, joined_seq, joined_at)
           select $1, u, 'member', $3, $4 from unnest($2::text[]) as u on conflict do nothing returning user_id`,
          [c.conv, c.add, convRow.last_seq, c.now],
        );
        for (const row of r.rows) bodies.push({ event: 'member_added', user: row.user_id, by: c.by });
      }
      if (c.remove?.length) {
        const r = await tx.query<{ user_id: string }>(
          'delete from members where conv = $1 and user_id = any($2::text[]) returning user_id',
          [c.conv, c.remove],
        );
        for (const row of r.rows) {
          removed.push(row.user_id);
          bodies.push({ event: row.user_id === c.by ? 'member_left' : 'member_removed', user: row.user_id, by: c.by });
        }
      }
      if (c.role) {
        const r = await tx.query('update members set role = $3 where conv = $1 and user_id = $2 and role <> $3', [c.conv, c.role.user, c.role.role]);
        if (r.rowCount > 0) bodies.push({ event: 'role_changed', user: c.role.user, role: c.role.role, by: c.by });
      }
      if (c.settings) {
        const s = c.settings;
        if (s.name !== undefined && s.name !== convRow.name) bodies.push({ event: 'settings_changed', name: s.name, by: c.by });
        if (s.announce_only !== undefined && s.announce_only !== convRow.announce_only) {
          bodies.push({ event: 'settings_changed', announce_only: s.announce_only, by: c.by });
        }
        await tx.query('update conversations set name = coalesce($2, name), announce_only = coalesce($3, announce_only) where id = $1', [
          c.conv,
          s.name ?? null,
          s.announce_only ?? null,
        ]);
      }
      const count = Number((await tx.query<{ n: number }>('select count(*)::int as n from members where conv = $1', [c.conv])).rows[0]!.n);
      const fanout = decideFanout(convRow.kind, count, c.fanoutWriteMax);
      const fanoutChanged = fanout !== convRow.fanout;
      if (fanout === 'read' && !fanoutChanged) {
        for (const b of bodies) if (b.event === 'member_added') b.topic = `group/${c.conv}`;
      }
      if (fanoutChanged) {
        bodies.push({ event: 'fanout_changed', by: c.by, ...(fanout === 'read' ? { topic: `group/${c.conv}` } : {}) });
      }
      let seq = convRow.last_seq;
      const events: MessageRow[] = [];
      for (const body of bodies) events.push(await insertEvent(tx, c.conv, ++seq, c.by, body, c.now));
      await tx.query('update conversations set last_seq = $2, member_count = $3, fanout = $4, last_activity = $5 where id = $1', [
        c.conv,
        seq,
        count,
        fanout,
        c.now,
      ]);
      if (count === 0) await tx.query('update conversations set member_count = 0 where id = $1', [c.conv]);
      return { events, fanout, fanoutChanged, removed };
    });
  }

  async listConversations(user: string): Promise<ConversationSummary[]> {
    const r = await this.db.query<Record<string, unknown>>(
      `select c.id, c.kind, c.name, c.member_count, c.last_seq, c.fanout, m.read_seq, m.delivered_seq,
         (select m2.user_id from members m2 where c.kind = 'dm' and m2.conv = c.id and m2.user_id <> $1 limit 1) as peer
       from members m join conversations c on c.id = m.conv where m.user_id = $1 order by c.last_activity desc`,
      [user],
    );
    return r.rows.map((row) => {
      const last = Number(row.last_seq);
      const read = Number(row.read_seq);
      const s: ConversationSummary = {
        conv: row.id as string,
        kind: row.kind as ConvKind,
        name: (row.name as string | null) ?? (row.peer as string | null) ?? null,
        members: Number(row.member_count),
        last_seq: last,
        read_seq: read,
        delivered_seq: Number(row.delivered_seq),
        unread: Math.max(0, last - read),
        fanout: row.fanout as FanoutMode,
      };
      if (row.peer) s.peer = row.peer as string;
      return s;
    });
  }

  /** Conversations by kind and fan-out mode (metrics). */
  async countConversations(): Promise<{ kind: ConvKind; fanout: FanoutMode; n: number }[]> {
    const r = await this.db.query<{ kind: ConvKind; fanout: FanoutMode; n: number }>(
      'select kind, fanout, count(*)::int as n from conversations group by kind, fanout',
    );
    return r.rows.map((x) => ({ ...x, n: Number(x.n) }));
  }

  // ---- messages ---------------------------------------------------------------------

  /**
   * Group commit: stores a batch of messages in one transaction. Per conversation the
   * seq range is taken from `last_seq` under its row lock (rows locked in id order, so
   * two writers never deadlock). A (sender, clientId) already stored — before or earlier
   * in the same batch — returns its original seq and stores nothing.
   */
  async appendMessages(batch: NewMessage[]): Promise<AppendResult[]> {
    if (batch.length === 0) return [];
    return this.db.transaction(async (tx) => {
      const results: (AppendResult | undefined)[] = new Array(batch.length);
      const existing = await tx.query<{ sender: string; client_id: string; conv: string; seq: number; ts: number; fanout: FanoutMode }>(
        `select m.sender, m.client_id, m.conv, m.seq, m.ts, c.fanout from messages m join conversations c on c.id = m.conv
         where (m.sender, m.client_id) in (select * from unnest($1::text[], $2::text[]))`,
        [batch.map((b) => b.sender), batch.map((b) => b.clientId)],
      );
      const known = new Map<string, AppendResult>();
      for (const e of existing.rows) {
        known.set(`${e.sender}\u0000${e.client_id}`, { conv: e.conv, seq: Number(e.seq), ts: Number(e.ts), duplicate: true, fanout: e.fanout });
      }
      const fresh: { index: number; m: NewMessage }[] = [];
      const firstInBatch = new Map<string, number>();
      batch.forEach((m, index) => {
        const key = `${m.sender}\u0000${m.clientId}`;
        const k = known.get(key);
        if (k) results[index] = k;
        else if (firstInBatch.has(key)) results[index] = undefined; // filled from its first copy below
        else {
          firstInBatch.set(key, index);
          fresh.push({ index, m });
        }
      });
      if (fresh.length > 0) {
        const perConv = new Map<string, number>();
        for (const f of fresh) perConv.set(f.m.conv, (perConv.get(f.m.conv) ?? 0) + 1);
        const convIds = [...perConv.keys()].sort();
        const locked = await tx.query<{ id: string; last_seq: number; fanout: FanoutMode }>(
          'select id, last_seq, fanout from conversations where id = any($1::text[]) order by id for update',
          [convIds],
        );
        const next = new Map<string, { seq: number; fanout: FanoutMode }>();
        for (const row of locked.rows) next.set(row.id, { seq: Number(row.last_seq), fanout: row.fanout });
        const now = Math.max(...fresh.map((f) => f.m.ts));
        const cols = { conv: [] as string[], seq: [] as number[], sender: [] as string[], cid: [] as string[], body: [] as string[], reply: [] as (number | null)[], media: [] as (string | null)[], ts: [] as number[] };
        for (const f of fresh) {
          const c = next.get(f.m.conv);
          if (!c) throw new ChatError('not_found', `no conversation ${f.m.conv}`);
          c.seq += 1;
          results[f.index] = { conv: f.m.conv, seq: c.seq, ts: f.m.ts, duplicate: false, fanout: c.fanout };
          cols.conv.push(f.m.conv);
          cols.seq.push(c.seq);
          cols.sender.push(f.m.sender);
          cols.cid.push(f.m.clientId);
          cols.body.push(JSON.stringify(f.m.body));
          cols.reply.push(f.m.replyTo ?? null);
          cols.media.push(f.m.media ? JSON.stringify(f.m.media) : null);
          cols.ts.push(f.m.ts);
        }
        await tx.query(
          `update conversations c set last_seq = v.seq, last_activity = $3
           from unnest($1::text[], $2::int[]) as v(id, seq) where c.id = v.id`,
          [[...next.keys()], [...next.values()].map((v) => v.seq), now],
        );
        await tx.query(
          `insert into messages (conv, seq, sender, client_id, kind, body, reply_to, media, ts)
           select conv, seq, sender, cid, 'msg', body::jsonb, reply, media::jsonb, ts
           from unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::int8[])
             as v(conv, seq, sender, cid, body, reply, media, ts)`,
          [cols.conv, cols.seq, cols.sender, cols.cid, cols.body, cols.reply, cols.media, cols.ts],
        );
      }
      return batch.map((m, index) => {
        const r = results[index];
        if (r) return r;
        const first = results[firstInBatch.get(`${m.sender}\u0000${m.clientId}`)!]!;
        return { ...first, duplicate: true };
      });
    });
  }

  async getMessage(conv: string, seq: number): Promise<MessageRow | undefined> {
    const r = await this.db.query<Record<string, unknown>>(`select ${messageColumns} from messages where conv = $1 and seq = $2`, [conv, seq]);
    return r.rows[0] ? toMessage(r.rows[0]) : undefined;
  }

  /** Messages with seq > after, oldest first, at most `limit`. */
  async messagesAfter(conv: string, after: number, limit: number): Promise<MessageRow[]> {
    const r = await this.db.query<Record<string, unknown>>(
      `select ${messageColumns} from messages where conv = $1 and seq > $2 order by seq limit $3`,
      [conv, after, limit],
    );
    return r.rows.map(toMessage);
  }

  /** Messages with seq < before (or the newest), newest last, at most `limit`. */
  async messagesBefore(conv: string, before: number | undefined, limit: number): Promise<MessageRow[]> {
    const r = await this.db.query<Record<string, unknown>>(
      `select ${messageColumns} from messages where conv = $1 and seq < $2 order by seq desc limit $3`,
      [conv, before ?? 2 ** 31 - 1, limit],
    );
    return r.rows.map(toMessage).reverse();
  }

  /**
   * Raises a member's cumulative delivered/read seq (read implies delivered). Returns the
   * previous value when it rose, undefined when nothing changed.
   */
  async updateReceipt(conv: string, user: string, seq: number, status: 'delivered' | 'read'): Promise<{ previous: number } | undefined> {
    const column = status === 'read' ? 'read_seq' : 'delivered_seq';
    const also = status === 'read' ? ', delivered_seq = greatest(m.delivered_seq, $3)' : '';
    const r = await this.db.query<{ previous: number }>(
      `update members m set ${column} = $3${also}
       from (select ${column} as previous from members where conv = $1 and user_id = $2 for update) p
       where m.conv = $1 and m.user_id = $2 and m.${column} < $3 returning p.previous`,
      [conv, user, seq],
    );
    return r.rows[0] ? { previous: Number(r.rows[0].previous) } : undefined;
  }

  /** Distinct senders of messages in (after, upTo]: who to tell about a receipt. */
  async sendersBetween(conv: string, after: number, upTo: number): Promise<string[]> {
    const r = await this.db.query<{ sender: string }>(
      "select distinct sender from messages where conv = $1 and seq > $2 and seq <= $3 and kind = 'msg'",
      [conv, after, upTo],
    );
    return r.rows.map((x) => x.sender);
  }

  // ---- blocks --------------------------------------------------------------------------

  async block(user: string, blocked: string, now: number): Promise<void> {
    await this.db.query('insert into blocks (user_id, blocked, created_at) values ($1, $2, $3) on conflict do nothing', [user, blocked, now]);
  }

  async unblock(user: string, blocked: string): Promise<void> {
    await this.db.query('delete from blocks where user_id = $1 and blocked = $2', [user, blocked]);
  }

  /** true when either user blocked the other. */
  async isBlockedBetween(a: string, b: string): Promise<boolean> {
    const r = await this.db.query(
      'select 1 from blocks where (user_id = $1 and blocked = $2) or (user_id = $2 and blocked = $1) limit 1',
      [a, b],
    );
    return r.rowCount > 0;
  }
}

async function insertEvent(tx: SqlClient, conv: string, seq: number, by: string, body: Record<string, unknown>, ts: number): Promise<MessageRow> {
  const clientId = `sys_${randomUUID()}`;
  await tx.query(
    `insert into messages (conv, seq, sender, client_id, kind, body, ts) values ($1, $2, $3, $4, 'conv', $5::jsonb, $6)`,
    [conv, seq, by, clientId, JSON.stringify(body), ts],
  );
  return { conv, seq, sender: by, client_id: clientId, kind: 'conv', body, reply_to: null, media: null, ts };
}

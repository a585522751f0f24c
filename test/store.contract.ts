/**
 * The store contract: one suite, a function of a factory, run against every Db
 * implementation (PGlite and PostgreSQL). A behaviour that differs between them fails here.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Db } from '../core/db.ts';
import { migrate, MigrationError } from '../core/migrate.ts';
import { ChatStore } from '../core/store.ts';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function storeContract(name: string, open: () => Promise<{ db: Db; cleanup(): Promise<void> }>): void {
  describe(`store contract: ${name}`, () => {
    let db: Db;
    let store: ChatStore;
    let cleanup: () => Promise<void>;
    const now = 1_700_000_000_000;

    beforeAll(async () => {
      ({ db, cleanup } = await open());
      await migrate(db);
      store = new ChatStore(db);
      for (const u of ['alice', 'bob', 'carol', 'dave']) await store.createUser(u, 'hash', now);
    });
    afterAll(async () => {
      await db.close();
      await cleanup();
    });

    it('applies each migration once and records it', async () => {
      expect(await migrate(db)).toEqual([]);
      const r = await db.query<{ name: string }>('select name from schema_migrations order by name');
      expect(r.rows.map((x) => x.name)).toContain('001_users.sql');
    });

    it('stops on a failed migration with its name and leaves the database as it was', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'mig-'));
      await writeFile(join(dir, '900_ok_then_bad.sql'), 'create table half_done (a int);\ninsert into nowhere values (1);');
      const err = await migrate(db, dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MigrationError);
      expect((err as Error).message).toMatch(/900_ok_then_bad\.sql.*nowhere/);
      const t = await db.query("select 1 from information_schema.tables where table_name = 'half_done'");
      expect(t.rowCount).toBe(0);
    });

    it('refuses a taken user id and returns int8 columns as numbers', async () => {
      expect(await store.createUser('alice', 'x', now)).toBe(false);
      await store.setLastSeen('alice', now + 5);
      const u = await store.getUser('alice');
      expect(u?.last_seen).toBe(now + 5);
      expect(await store.getUser('nobody')).toBeUndefined();
    });

    it('rotates refresh tokens and revokes the family on reuse', async () => {
      await store.insertRefreshToken({ id: 't1', family: 'f1', user: 'alice', device: 'd', hash: 'h1', expiresAt: now + 1000, now });
      await store.insertRefreshToken({ id: 't2', family: 'f1', user: 'alice', device: 'd', hash: 'h2', expiresAt: now + 1000, now });
      expect(await store.consumeRefreshToken('t1', 'wrong', now)).toEqual({ status: 'invalid' });
      expect((await store.consumeRefreshToken('t1', 'h1', now)).status).toBe('ok');
      expect((await store.consumeRefreshToken('t1', 'h1', now)).status).toBe('reused');
      expect((await store.consumeRefreshToken('t2', 'h2', now)).status).toBe('invalid');
    });

    it('opens one dm per pair, whoever opens it', async () => {
      const c1 = await store.openDm('alice', 'bob', now);
      const c2 = await store.openDm('bob', 'alice', now);
      expect(c2).toBe(c1);
      expect((await store.getMembers(c1)).map((m) => m.user)).toEqual(['alice', 'bob']);
      expect(await store.sharesConversation('alice', 'bob')).toBe(true);
      expect(await store.sharesConversation('alice', 'dave')).toBe(false);
    });

    it('assigns gap-free seqs in a batch across conversations and dedupes (sender, id)', async () => {
      const dm = await store.openDm('alice', 'carol', now);
      const g = await store.createGroup({ owner: 'alice', name: 'g', members: ['bob', 'carol'], kind: 'group', now, fanoutWriteMax: 1000 });
      const batch = [
        { conv: dm, sender: 'alice', clientId: 'm1', body: { text: 'a' }, ts: now },
        { conv: g.conv, sender: 'bob', clientId: 'm1', body: { text: 'b' }, ts: now },
        { conv: dm, sender: 'carol', clientId: 'm1', body: { text: 'c' }, ts: now },
        { conv: dm, sender: 'alice', clientId: 'm1', body: { text: 'dup in batch' }, ts: now },
      ];
      const r = await store.appendMessages(batch);
      expect(r.map((x) => [x.seq, x.duplicate])).toEqual([[1, false], [2, false], [2, false], [1, true]]);
      const again = await store.appendMessages([{ conv: dm, sender: 'alice', clientId: 'm1', body: { text: 'resend' }, ts: now + 1 }]);
      expect(again[0]).toMatchObject({ conv: dm, seq: 1, duplicate: true, ts: now });
      const msgs = await store.messagesAfter(dm, 0, 10);
      expect(msgs.map((m) => [m.seq, m.sender, m.body.text])).toEqual([[1, 'alice', 'a'], [2, 'carol', 'c']]);
      expect((await store.getConversation(dm))?.last_seq).toBe(2);
    });

    it('keeps seq gap-free under concurrent batches', async () => {
      const g = await store.createGroup({ owner: 'alice', name: 'busy', members: ['bob'], kind: 'group', now, fanoutWriteMax: 1000 });
      const writers = Array.from({ length: 8 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 10; i++) {
            await store.appendMessages([0, 1, 2].map((k) => ({ conv: g.conv, sender: 'bob', clientId: `w${w}-${i}-${k}`, body: {}, ts: now })));
          }
        })(),
      );
      await Promise.all(writers);
      const seqs = (await store.messagesAfter(g.conv, 0, 1000)).map((m) => m.seq);
      expect(seqs).toEqual(Array.from({ length: 241 }, (_, i) => i + 1));
    });

    it('pages history newest-last and sync oldest-first', async () => {
      const g = await store.createGroup({ owner: 'bob', name: 'pages', members: [], kind: 'group', now, fanoutWriteMax: 1000 });
      await store.appendMessages(Array.from({ length: 9 }, (_, i) => ({ conv: g.conv, sender: 'bob', clientId: `p${i}`, body: { i }, ts: now })));
      expect((await store.messagesBefore(g.conv, undefined, 3)).map((m) => m.seq)).toEqual([8, 9, 10]);
      expect((await store.messagesBefore(g.conv, 8, 3)).map((m) => m.seq)).toEqual([5, 6, 7]);
      expect((await store.messagesAfter(g.conv, 7, 2)).map((m) => m.seq)).toEqual([8, 9]);
    });

    it('records membership changes as conv events and switches fan-out at the threshold', async () => {
      const g = await store.createGroup({ owner: 'alice', name: 'grow', members: ['bob'], kind: 'group', now, fanoutWriteMax: 2 });
      expect(g.fanout).toBe('write');
      const up = await store.changeMembership({ conv: g.conv, by: 'alice', add: ['carol', 'dave'], now, fanoutWriteMax: 2 });
      expect(up.fanoutChanged).toBe(true);
      expect(up.fanout).toBe('read');
      expect(up.events.map((e) => [e.seq, e.body.event])).toEqual([[2, 'member_added'], [3, 'member_added'], [4, 'fanout_changed']]);
      const down = await store.changeMembership({ conv: g.conv, by: 'alice', remove: ['carol', 'dave'], now, fanoutWriteMax: 2 });
      expect(down.fanout).toBe('write');
      expect(down.removed.sort()).toEqual(['carol', 'dave']);
      expect((await store.getConversation(g.conv))).toMatchObject({ last_seq: 7, member_count: 2, fanout: 'write' });
    });

    it('keeps receipts cumulative and reports unread', async () => {
      const dm = await store.openDm('bob', 'dave', now);
      await store.appendMessages([1, 2, 3].map((i) => ({ conv: dm, sender: 'bob', clientId: `r${i}`, body: {}, ts: now })));
      expect(await store.updateReceipt(dm, 'dave', 2, 'read')).toEqual({ previous: 0 });
      expect(await store.updateReceipt(dm, 'dave', 1, 'read')).toBeUndefined();
      expect(await store.getMember(dm, 'dave')).toMatchObject({ read_seq: 2, delivered_seq: 2 });
      const list = await store.listConversations('dave');
      expect(list.find((c) => c.conv === dm)).toMatchObject({ last_seq: 3, read_seq: 2, unread: 1, peer: 'bob', kind: 'dm' });
      expect(await store.sendersBetween(dm, 0, 2)).toEqual(['bob']);
    });

    it('records blocks both ways', async () => {
      await store.block('carol', 'dave', now);
      expect(await store.isBlockedBetween('dave', 'carol')).toBe(true);
      await store.unblock('carol', 'dave');
      expect(await store.isBlockedBetween('dave', 'carol')).toBe(false);
    });
  });
}

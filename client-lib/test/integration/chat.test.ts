/**
 * ChatClient against the real server (in-process platform, ephemeral ports): two users
 * chatting, groups, media, offline sends, an app restart with a queued message, a member
 * catching up on 1,000 messages, and the hybrid fan-out switch (DESIGN section 5). These
 * tests fail, not skip, when the server does not keep DESIGN.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatClient } from '../../src/client.ts';
import { foldMessages } from '../../src/message-view.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { makeClient, observe } from '../helpers/chat-user.ts';
import { loadPlatform, uniqueUser, waitFor, type PlatformHelpers, type TestPlatform } from '../helpers/platform.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

let helpers: PlatformHelpers;
let platform: TestPlatform;
const clients: ChatClient[] = [];
const directory = mkdtempSync(join(tmpdir(), 'client-lib-it-'));

beforeAll(async () => {
  helpers = await loadPlatform();
  // FANOUT_WRITE_MAX=3: groups of up to three members use the inboxes, larger ones group/{conv}.
  platform = await helpers.startPlatform({ fanoutWriteMax: 3 });
});

afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  await platform?.close();
  rmSync(directory, { recursive: true, force: true });
});

async function user(prefix: string, device = 'default') {
  const registration = await helpers.registerUser(platform.httpUrl, uniqueUser(prefix), 'correct-horse-battery', device);
  return registration;
}

function track(client: ChatClient): ChatClient {
  clients.push(client);
  return client;
}

describe('two clients chat', () => {
  it('send, receive, echo, reply, receipts, edits, reactions, presence and typing', async () => {
    const aliceReg = await user('alice');
    const bobReg = await user('bob');
    const alice = track(makeClient(platform.mqttUrl, platform.httpUrl, aliceReg));
    const bob = track(makeClient(platform.mqttUrl, platform.httpUrl, bobReg));
    const aliceSaw = observe(alice);
    const bobSaw = observe(bob);
    await Promise.all([alice.connect(), bob.connect()]);
    expect(alice.state).toBe('online');

    // 1:1 by user id: the ack carries the conversation and the seq.
    const ack = await alice.send({ to: bobReg.user }, { text: 'hi bob' });
    expect(ack).toMatchObject({ conv: expect.any(String), seq: expect.any(Number), id: expect.any(String), ts: expect.any(Number) });
    const conv = ack.conv;
    await waitFor(() => bobSaw.messages.some((m) => m.seq === ack.seq), 'bob receives the message');
    const received = bobSaw.messages.find((m) => m.seq === ack.seq)!;
    expect(received).toMatchObject({ conv, from: aliceReg.user, id: ack.id, body: { text: 'hi bob' }, own: false });
    // The sender's own copy comes back once, recognised as its own.
    await waitFor(() => aliceSaw.messages.some((m) => m.id === ack.id), 'alice sees her own message');
    expect(aliceSaw.messages.filter((m) => m.id === ack.id)).toEqual([expect.objectContaining({ own: true, seq: ack.seq })]);

    // A reply in the conversation.
    const reply = await bob.reply(conv, ack.seq, { text: 'hi alice' });
    await waitFor(() => aliceSaw.messages.some((m) => m.seq === reply.seq), 'alice receives the reply');
    expect(aliceSaw.messages.find((m) => m.seq === reply.seq)).toMatchObject({ reply_to: ack.seq, from: bobReg.user });

    // Receipts: bob's client reports delivered by itself; read when bob reads.
    await waitFor(() => alice.conversationState(conv)?.members[bobReg.user]?.delivered !== undefined && alice.conversationState(conv)!.members[bobReg.user]!.delivered >= ack.seq, 'delivered receipt from bob');
    await bob.markRead(conv, reply.seq);
    await waitFor(() => (alice.conversationState(conv)?.members[bobReg.user]?.read ?? 0) >= ack.seq, 'read receipt from bob');
    expect(aliceSaw.receipts.some((r) => r.user === bobReg.user && r.status === 'read')).toBe(true);
    expect(bob.conversationState(conv)).toMatchObject({ read_seq: reply.seq, unread: 0 });

    // Edits, reactions and deletions are messages; folding them gives the screen state.
    const edit = await alice.edit(conv, ack.seq, 'hi Bob!');
    const react = await bob.react(conv, ack.seq, '👍');
    const del = await bob.deleteForEveryone(conv, reply.seq);
    await waitFor(() => [edit, react, del].every((a) => bobSaw.messages.some((m) => m.seq === a.seq)), 'bob holds edit, reaction, deletion');
    const views = foldMessages(await bob.localMessages(conv, { limit: 100 }));
    expect(views.find((v) => v.seq === ack.seq)).toMatchObject({ text: 'hi Bob!', reactions: { '👍': [bobReg.user] }, deleted: false });
    expect(views.find((v) => v.seq === reply.seq)).toMatchObject({ deleted: true });
    await expect(bob.edit(conv, ack.seq, 'not mine')).rejects.toMatchObject({ code: 'forbidden', retryable: false });

    // The server's history agrees with what the client holds.
    const page = await bob.history(conv, { limit: 100 });
    expect(page.messages.filter((m) => m.kind !== 'conv').map((m) => m.seq)).toEqual(
      (await bob.localMessages(conv, { limit: 100 })).filter((m) => m.kind !== 'conv').map((m) => m.seq),
    );

    // Presence of a contact, from the retained state, then live.
    await alice.watchPresence(bobReg.user);
    await waitFor(() => alice.presence(bobReg.user)?.state === 'online', 'bob shown online');
    // Typing: alice types, bob sees it; alice sends, bob sees idle.
    await bob.watchTyping(conv); // resolves after the SUBACK
    alice.typing(conv);
    await waitFor(() => bobSaw.typing.some((t) => t.user === aliceReg.user && t.state === 'typing'), 'bob sees alice typing');
    expect(bob.typingUsers(conv)).toEqual([aliceReg.user]);
    await alice.send({ conv }, { text: 'done typing' });
    await waitFor(() => bob.typingUsers(conv).length === 0, 'alice typing cleared');

    await bob.close();
    await waitFor(() => alice.presence(bobReg.user)?.state === 'offline', 'bob shown offline');
    expect(aliceSaw.errors).toEqual([]);
    expect(bobSaw.errors).toEqual([]);
  });

  it('groups: create, info, add, settings, roles and the conversations list', async () => {
    const [owner, member, extra] = await Promise.all([user('own'), user('mem'), user('ext')]);
    const ownerClient = track(makeClient(platform.mqttUrl, platform.httpUrl, owner));
    const memberClient = track(makeClient(platform.mqttUrl, platform.httpUrl, member));
    const memberSaw = observe(memberClient);
    await Promise.all([ownerClient.connect(), memberClient.connect()]);
    const conv = await ownerClient.group.create('Team', [member.user]);
    await ownerClient.group.add(conv, [extra.user]);
    await ownerClient.group.settings(conv, { name: 'Team 2' });
    await ownerClient.group.role(conv, member.user, 'admin');
    const info = await memberClient.group.info(conv);
    expect(info).toMatchObject({ conv, name: 'Team 2', kind: 'group', announce_only: false });
    expect(info.members.map((m) => `${m.user}:${m.role}`).sort()).toEqual(
      [`${owner.user}:owner`, `${member.user}:admin`, `${extra.user}:member`].sort(),
    );
    await waitFor(() => memberSaw.conversations.some((e) => e.event === 'settings_changed'), 'member sees the rename');
    expect(memberSaw.conversations.map((e) => e.event)).toEqual(expect.arrayContaining(['member_added', 'settings_changed', 'role_changed']));
    expect(memberClient.conversationState(conv)?.name).toBe('Team 2');
    const listed = await memberClient.conversations();
    expect(listed.find((c) => c.conv === conv)).toMatchObject({ kind: 'group', name: 'Team 2' });
    const sent = await memberClient.send({ conv }, { text: 'hello team' });
    expect(sent.conv).toBe(conv);
    await expect(memberClient.group.info('c_does_not_exist')).rejects.toMatchObject({ code: 'not_found' });
    await expect(ownerClient.profile.set({ name: 'The Owner' })).resolves.toMatchObject({ user: owner.user, name: 'The Owner' });
    await expect(memberClient.profile.get(owner.user)).resolves.toMatchObject({ name: 'The Owner' });
  });
});

describe('media', () => {
  it('uploads bytes, attaches them to a message, and the other member downloads them', async () => {
    const [ivy, jon] = await Promise.all([user('ivy'), user('jon')]);
    const ivyClient = track(makeClient(platform.mqttUrl, platform.httpUrl, ivy));
    const jonClient = track(makeClient(platform.mqttUrl, platform.httpUrl, jon));
    const jonSaw = observe(jonClient);
    await Promise.all([ivyClient.connect(), jonClient.connect()]);
    const opening = await ivyClient.send({ to: jon.user }, { text: 'a file follows' });
    const bytes = new TextEncoder().encode('the quick brown fox jumps over the lazy dog\n');
    const record = await ivyClient.media.send(opening.conv, bytes, 'text/plain');
    expect(record).toMatchObject({ conv: opening.conv, owner: ivy.user, size: bytes.byteLength, state: 'complete' });
    const withFile = await ivyClient.send({ conv: opening.conv }, { text: 'fox.txt' }, { media: [record.id] });
    await waitFor(() => jonSaw.messages.some((m) => m.seq === withFile.seq), 'jon receives the attachment');
    expect(jonSaw.messages.find((m) => m.seq === withFile.seq)?.media).toEqual([record.id]);
    const download = await jonClient.media.get(record.id);
    expect(download.url).toEqual(expect.any(String));
    const fetched = await fetch(new URL(download.url!, platform.httpUrl));
    expect(fetched.status).toBe(200);
    expect(new Uint8Array(await fetched.arrayBuffer())).toEqual(bytes);
    const outsider = track(makeClient(platform.mqttUrl, platform.httpUrl, await user('eve')));
    await outsider.connect();
    await expect(outsider.media.get(record.id)).rejects.toMatchObject({ code: expect.stringMatching(/^(forbidden|not_member|not_found)$/) });
  });
});

describe('offline', () => {
  it('a send made while the network is down is delivered after the reconnect', async () => {
    const [carol, dave] = await Promise.all([user('carol'), user('dave')]);
    const proxy = await TcpProxy.start(platform.mqttUrl);
    try {
      const carolClient = track(makeClient(proxy.url, platform.httpUrl, carol, { keepaliveSeconds: 2 }));
      const daveClient = track(makeClient(platform.mqttUrl, platform.httpUrl, dave));
      const daveSaw = observe(daveClient);
      await Promise.all([carolClient.connect(), daveClient.connect()]);
      const first = await carolClient.send({ to: dave.user }, { text: 'before' });

      proxy.cut();
      await waitFor(() => carolClient.state === 'reconnecting' || carolClient.state === 'connecting', 'carol notices the drop');
      let settled = false;
      const offlineSend = carolClient.send({ conv: first.conv }, { text: 'sent while offline' });
      void offlineSend.then(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(settled).toBe(false);
      expect(carolClient.pendingSends().map((e) => e.body)).toEqual([{ text: 'sent while offline' }]);
      expect(daveSaw.messages.map((m) => m.body.text)).toEqual(['before']);

      proxy.restore();
      const ack = await offlineSend;
      expect(ack.seq).toBe(first.seq + 1);
      await waitFor(() => daveSaw.messages.length === 2, 'dave receives the offline message');
      expect(daveSaw.messages.map((m) => [m.seq, m.body.text])).toEqual([
        [first.seq, 'before'],
        [ack.seq, 'sent while offline'],
      ]);
      expect(carolClient.pendingSends()).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('a message queued before an app restart is sent by the next run (SQLite outbox)', async () => {
    const [erin, frank] = await Promise.all([user('erin'), user('frank')]);
    const frankClient = track(makeClient(platform.mqttUrl, platform.httpUrl, frank));
    const frankSaw = observe(frankClient);
    await frankClient.connect();
    const path = join(directory, `${erin.user}.db`);

    // First run: never connects (no network at start), queues, and is closed.
    const firstRun = makeClient(platform.mqttUrl, platform.httpUrl, erin, { store: new SqliteStore({ path }) });
    const queued = firstRun.send({ to: frank.user }, { text: 'written on the plane' }, { id: 'plane-1' });
    await waitFor(() => firstRun.pendingSends().length === 1, 'queued in the outbox');
    await firstRun.close();
    await expect(queued).rejects.toMatchObject({ code: 'disconnected', retryable: true });
    await firstRun.store.close();

    // Second run: same database, connects, and the outbox goes out by itself.
    const store = new SqliteStore({ path });
    const secondRun = track(makeClient(platform.mqttUrl, platform.httpUrl, erin, { store }));
    const acks: string[] = [];
    secondRun.on('ack', (a) => acks.push(a.id));
    await secondRun.connect();
    await waitFor(() => acks.includes('plane-1'), 'the queued message is acknowledged');
    await waitFor(() => frankSaw.messages.some((m) => m.id === 'plane-1'), 'frank receives it');
    expect(frankSaw.messages.filter((m) => m.id === 'plane-1')).toHaveLength(1);
    expect(await store.outboxList()).toEqual([]);
  });

  it('a client offline for 1,000 messages catches up in order, once each, and can search them', async () => {
    const [gina, hank] = await Promise.all([user('gina'), user('hank')]);
    const sender = track(makeClient(platform.mqttUrl, platform.httpUrl, gina));
    await sender.connect();
    const path = join(directory, `${hank.user}.db`);
    const receiverFirstRun = makeClient(platform.mqttUrl, platform.httpUrl, hank, { store: new SqliteStore({ path }) });
    const firstSaw = observe(receiverFirstRun);
    await receiverFirstRun.connect();
    const opening = await sender.send({ to: hank.user }, { text: 'message 0' });
    await waitFor(() => firstSaw.messages.length === 1, 'hank has the first message');
    await receiverFirstRun.close();
    await receiverFirstRun.store.close();

    const acks = await Promise.all(Array.from({ length: 1000 }, (_, i) => sender.send({ conv: opening.conv }, { text: `message ${i + 1}` })));
    const seqs = acks.map((a) => a.seq);
    expect(new Set(seqs).size).toBe(1000);
    expect(Math.max(...seqs)).toBe(opening.seq + 1000);

    const started = Date.now();
    const store = new SqliteStore({ path });
    const receiver = track(makeClient(platform.mqttUrl, platform.httpUrl, hank, { store }));
    const saw = observe(receiver);
    await receiver.connect();
    await waitFor(() => saw.messages.length >= 1000, 'hank catches up', 30_000);
    await receiver.whenSynced();
    const caughtUpMs = Date.now() - started;
    expect(saw.messages.map((m) => m.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => opening.seq + 1 + i));
    expect(saw.messages.map((m) => m.body.text)).toEqual(Array.from({ length: 1000 }, (_, i) => `message ${i + 1}`));
    expect(receiver.conversationState(opening.conv)).toMatchObject({ synced_seq: opening.seq + 1000, last_seq: opening.seq + 1000 });
    expect((await store.listMessages(opening.conv, { limit: 2000 })).filter((m) => m.kind !== 'conv')).toHaveLength(1001);
    expect((await receiver.search('message 999')).map((m) => m.body.text)).toEqual(['message 999']);
    expect(caughtUpMs).toBeLessThan(30_000);
  });
});

describe('fan-out', () => {
  // FANOUT_WRITE_MAX is 3 on this platform (see beforeAll).
  it('follows group/{conv} after fanout_changed, across a reconnect, and leaves it when the group shrinks', async () => {
    const [owner, member, x, y] = await Promise.all(
      ['own', 'mem', 'x', 'y'].map((prefix) => helpers.registerUser(platform.httpUrl, uniqueUser(prefix))),
    );
    const proxy = await TcpProxy.start(platform.mqttUrl);
    try {
      const ownerClient = makeClient(platform.mqttUrl, platform.httpUrl, owner!);
      const memberClient = makeClient(proxy.url, platform.httpUrl, member!, { keepaliveSeconds: 2 });
      clients.push(ownerClient, memberClient);
      const memberSaw = observe(memberClient);
      await Promise.all([ownerClient.connect(), memberClient.connect()]);

      // Three members: fan-out on write, delivered to the inbox.
      const conv = await ownerClient.group.create('growing', [member!.user, x!.user]);
      const small = await ownerClient.send({ conv }, { text: 'small group' });
      await waitFor(() => memberSaw.messages.some((m) => m.seq === small.seq), 'message while small');
      expect(memberClient.conversationState(conv)?.topic ?? null).toBeNull();

      // The fourth member crosses FANOUT_WRITE_MAX = 3.
      await ownerClient.group.add(conv, [y!.user]);
      await waitFor(() => memberSaw.conversations.some((e) => e.event === 'fanout_changed'), 'fanout_changed reaches the member');
      expect(memberSaw.conversations.find((e) => e.event === 'fanout_changed')).toMatchObject({ conv, topic: `group/${conv}` });
      await waitFor(() => memberClient.conversationState(conv)?.topic === `group/${conv}`, 'member follows the group topic');
      await memberClient.whenSynced(); // includes the switch: subscribed, then synced
      const large = await ownerClient.send({ conv }, { text: 'large group' });
      await waitFor(() => memberSaw.messages.some((m) => m.seq === large.seq), 'message through group/{conv}');
      expect(memberSaw.messages.find((m) => m.seq === large.seq)?.source).toBe('live');

      // After a network drop the client subscribes group/{conv} again by itself.
      proxy.cut();
      await waitFor(() => memberClient.state !== 'online', 'member notices the drop');
      proxy.restore();
      await waitFor(() => memberClient.state === 'online', 'member back online', 20_000);
      await memberClient.whenSynced();
      const afterReconnect = await ownerClient.send({ conv }, { text: 'after reconnect' });
      await waitFor(() => memberSaw.messages.some((m) => m.seq === afterReconnect.seq), 'message after the reconnect');
      expect(memberSaw.messages.find((m) => m.seq === afterReconnect.seq)?.source).toBe('live');

      // Back to three members: fan-out on write again, the client drops the topic.
      await ownerClient.group.remove(conv, [y!.user]);
      await waitFor(() => memberSaw.conversations.filter((e) => e.event === 'fanout_changed').length === 2, 'second fanout_changed');
      await waitFor(() => (memberClient.conversationState(conv)?.topic ?? null) === null, 'member leaves the group topic');
      const smallAgain = await ownerClient.send({ conv }, { text: 'small again' });
      await waitFor(() => memberSaw.messages.some((m) => m.seq === smallAgain.seq), 'message through the inbox again');

      // Every message exactly once and in order, whatever path it took.
      const seqs = memberSaw.messages.map((m) => m.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(memberSaw.messages.map((m) => m.body.text)).toEqual(['small group', 'large group', 'after reconnect', 'small again']);
      expect(memberSaw.errors).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});

/**
 * Hybrid fan-out (DESIGN section 5) seen from the client: when a group grows past
 * FANOUT_WRITE_MAX the server sends `fanout_changed` with `group/{conv}`, and the client
 * follows that topic by itself — after the event, after a reconnect, and back again when
 * the group shrinks.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ChatClient } from '../../src/client.ts';
import { makeClient, observe } from '../helpers/chat-user.ts';
import { loadPlatform, uniqueUser, waitFor, type PlatformHelpers, type TestPlatform } from '../helpers/platform.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

let helpers: PlatformHelpers;
let platform: TestPlatform;
const clients: ChatClient[] = [];

beforeAll(async () => {
  helpers = await loadPlatform();
  platform = await helpers.startPlatform({ fanoutWriteMax: 3 });
});

afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  await platform?.close();
});

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

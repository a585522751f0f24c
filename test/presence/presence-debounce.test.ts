/**
 * Flapping over real sockets: with presenceDebounceMs 1000, a device that drops and comes
 * back within the window announces nothing; a lasting drop is announced once, with the
 * time of the drop as last seen. (Chat store on PostgreSQL: fast to start.)
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';
import type { Device } from '../helpers/mqtt.ts';
import { newUser, presenceOf, shareDm, sleep, waitPresence, watch } from './helpers.ts';

const debounceMs = 1_000;

describe('presence debounce over MQTT', () => {
  let p: TestPlatform;
  const devices: Device[] = [];

  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres', config: { presenceDebounceMs: debounceMs } });
  });
  afterAll(async () => {
    for (const d of devices) await d.close();
    await p?.close();
  });

  it('a device that drops and returns within the window: no offline/online pair; a lasting drop: one offline', async () => {
    const a = await newUser(p, 'alice');
    const b = await newUser(p, 'bob');
    const bob = await b.connect();
    devices.push(bob);
    await shareDm(bob, a.user);
    await watch(bob, a.user);

    let alice = await a.connect();
    await waitPresence(bob, a.user, 'online');
    for (let i = 0; i < 3; i++) {
      alice.client.stream.destroy(); // a dead socket
      await sleep(150);
      alice = await a.connect(); // back well within the window
    }
    await alice.client.endAsync(); // a clean disconnect...
    alice = await a.connect(); // ...and back at once
    await sleep(debounceMs + 500);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online']);

    const droppedAt = Date.now();
    alice.client.stream.destroy();
    const offline = await waitPresence(bob, a.user, 'offline');
    const announcedAt = Date.now();
    expect(announcedAt - droppedAt).toBeGreaterThanOrEqual(debounceMs - 50);
    // last seen is the drop, not the announcement
    expect(offline.last_seen as number).toBeGreaterThanOrEqual(droppedAt - 5);
    expect(offline.last_seen as number).toBeLessThan(droppedAt + 200);
    await sleep(500);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online', 'offline']);

    // the next session is announced at once, not after a window
    const back = Date.now();
    devices.push(await a.connect());
    await waitPresence(bob, a.user, 'online', 2);
    expect(Date.now() - back).toBeLessThan(debounceMs / 2);
  });
});

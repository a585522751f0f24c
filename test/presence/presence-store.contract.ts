/**
 * The presence store contract (broker/presence-store.ts): one suite, a function of a
 * factory, run against every PresenceStore (memory and Redis). Time is passed in, so the
 * suite runs on made-up times and never sleeps.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import type { PresenceStore } from '../../broker/presence-store.ts';

export interface PresenceStoreFixture {
  store: PresenceStore;
  /** Removes what the store wrote (and closes it). */
  cleanup(): Promise<void>;
}

export function presenceStoreContract(name: string, open: () => Promise<PresenceStoreFixture>): void {
  describe(`presence store contract: ${name}`, () => {
    let s: PresenceStore;
    let cleanup: () => Promise<void>;
    const t0 = 1_700_000_000_000;

    beforeEach(async () => {
      ({ store: s, cleanup } = await open());
      await s.heartbeat('n1', t0);
      await s.heartbeat('n2', t0);
    });
    afterEach(async () => cleanup());

    it('an unknown user: no devices, not online, no last seen, nothing to settle', async () => {
      expect(await s.devices('alice')).toEqual([]);
      expect(await s.isOnline('alice')).toBe(false);
      expect(await s.lastSeen('alice')).toBeNull();
      expect(await s.settleOffline('alice', t0, 0)).toBeNull();
      expect(await s.disconnect('n1', 'alice', 'phone', t0)).toBe(0);
      expect(await s.lastSeen('alice')).toBeNull();
    });

    it('the first connect comes online, later ones do not; devices are distinct over nodes', async () => {
      expect(await s.connect('n1', 'alice', 'phone', t0)).toEqual({ devices: 1, cameOnline: true });
      expect(await s.connect('n1', 'alice', 'laptop', t0)).toEqual({ devices: 2, cameOnline: false });
      expect(await s.connect('n2', 'alice', 'phone', t0)).toEqual({ devices: 2, cameOnline: false });
      expect(await s.devices('alice')).toEqual([
        { node: 'n1', device: 'laptop' },
        { node: 'n1', device: 'phone' },
        { node: 'n2', device: 'phone' },
      ]);
      expect(await s.isOnline('alice')).toBe(true);
      expect(await s.devices('bob')).toEqual([]);
    });

    it('connections are counted: a takeover holds two of one device until both leave', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.connect('n1', 'alice', 'phone', t0 + 1);
      expect(await s.disconnect('n1', 'alice', 'phone', t0 + 2)).toBe(1);
      expect(await s.lastSeen('alice')).toBeNull();
      expect(await s.disconnect('n1', 'alice', 'phone', t0 + 3)).toBe(0);
      expect(await s.lastSeen('alice')).toBe(t0 + 3);
      // a disconnect of nothing changes nothing
      expect(await s.disconnect('n1', 'alice', 'phone', t0 + 9)).toBe(0);
      expect(await s.lastSeen('alice')).toBe(t0 + 3);
    });

    it('a disconnect on one node leaves the devices on another', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.connect('n2', 'alice', 'laptop', t0);
      expect(await s.disconnect('n2', 'alice', 'phone', t0)).toBe(2); // not on n2
      expect(await s.disconnect('n1', 'alice', 'phone', t0)).toBe(1);
      expect(await s.devices('alice')).toEqual([{ node: 'n2', device: 'laptop' }]);
      expect(await s.settleOffline('alice', t0 + 10_000, 0)).toBeNull();
      expect(await s.isOnline('alice')).toBe(true);
    });

    it('settles offline once the last drop is older than the debounce, with last seen = the drop', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.disconnect('n1', 'alice', 'phone', t0 + 100);
      expect(await s.isOnline('alice')).toBe(true);
      expect(await s.settleOffline('alice', t0 + 100 + 2_999, 3_000)).toBeNull();
      expect(await s.settleOffline('alice', t0 + 100 + 3_000, 3_000)).toBe(t0 + 100);
      expect(await s.isOnline('alice')).toBe(false);
      expect(await s.settleOffline('alice', t0 + 100 + 3_000, 3_000)).toBeNull(); // once
      expect(await s.lastSeen('alice')).toBe(t0 + 100);
      // the next session comes online again
      expect(await s.connect('n2', 'alice', 'phone', t0 + 5_000)).toEqual({ devices: 1, cameOnline: true });
    });

    it('a return within the window keeps the user online; a later drop opens a new window', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.disconnect('n1', 'alice', 'phone', t0 + 100);
      expect(await s.connect('n2', 'alice', 'phone', t0 + 500)).toEqual({ devices: 1, cameOnline: false });
      expect(await s.settleOffline('alice', t0 + 3_100, 3_000)).toBeNull(); // connected
      await s.disconnect('n2', 'alice', 'phone', t0 + 2_000);
      expect(await s.settleOffline('alice', t0 + 3_100, 3_000)).toBeNull(); // n1's timer: too early for the later drop
      expect(await s.settleOffline('alice', t0 + 5_000, 3_000)).toBe(t0 + 2_000);
    });

    it('last seen only moves forward', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.disconnect('n1', 'alice', 'phone', t0 + 1_000);
      await s.connect('n1', 'alice', 'phone', t0 + 2_000);
      await s.disconnect('n1', 'alice', 'phone', t0 + 500); // a late, older report
      expect(await s.lastSeen('alice')).toBe(t0 + 1_000);
    });

    it('heartbeat: false for a node it does not know, true afterwards', async () => {
      expect(await s.heartbeat('n3', t0)).toBe(false);
      expect(await s.heartbeat('n3', t0 + 1_000)).toBe(true);
    });

    it('expire: a dead node loses its connections and its users with no device left go offline, once', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.connect('n2', 'alice', 'laptop', t0);
      await s.connect('n2', 'bob', 'phone', t0);
      await s.connect('n2', 'bob', 'tablet', t0);
      await s.connect('n1', 'carol', 'phone', t0);
      await s.heartbeat('n1', t0 + 10_000);
      await s.heartbeat('n2', t0 + 4_000);
      // n2 beat at t0+4000: alive until t0+19000 with a 15 s TTL
      expect(await s.expire(t0 + 19_000, 15_000)).toEqual([]);
      expect((await s.expire(t0 + 19_001, 15_000)).sort((a, b) => a.user.localeCompare(b.user))).toEqual([{ user: 'bob', lastSeen: t0 + 4_000 }]);
      expect(await s.expire(t0 + 19_001, 15_000)).toEqual([]);
      expect(await s.devices('alice')).toEqual([{ node: 'n1', device: 'phone' }]);
      expect(await s.devices('bob')).toEqual([]);
      expect(await s.isOnline('alice')).toBe(true);
      expect(await s.isOnline('bob')).toBe(false);
      expect(await s.isOnline('carol')).toBe(true);
      expect(await s.lastSeen('bob')).toBe(t0 + 4_000);
      // the dead node is forgotten: its next heartbeat says so
      expect(await s.heartbeat('n2', t0 + 20_000)).toBe(false);
      expect(await s.heartbeat('n1', t0 + 20_000)).toBe(true);
    });

    it('expire settles a drop whose node died within the debounce window', async () => {
      await s.connect('n2', 'alice', 'phone', t0);
      await s.disconnect('n2', 'alice', 'phone', t0 + 1_000);
      expect(await s.expire(t0 + 15_000, 15_000)).toEqual([]);
      expect(await s.expire(t0 + 16_001, 15_000)).toEqual([{ user: 'alice', lastSeen: t0 + 1_000 }]);
      expect(await s.isOnline('alice')).toBe(false);
      expect(await s.settleOffline('alice', t0 + 20_000, 0)).toBeNull();
    });

    it('reconnect sets a node\'s connections of a user again after it was expired', async () => {
      await s.connect('n2', 'alice', 'phone', t0);
      await s.connect('n2', 'alice', 'phone', t0);
      await s.connect('n1', 'alice', 'laptop', t0);
      await s.heartbeat('n1', t0 + 20_000);
      expect(await s.expire(t0 + 20_000, 15_000)).toEqual([]); // alice still has the laptop
      expect(await s.reconnect('n2', 'alice', new Map([['phone', 2], ['watch', 1]]), t0 + 20_000)).toEqual({ devices: 3, cameOnline: false });
      expect(await s.reconnect('n2', 'alice', new Map([['phone', 2]]), t0 + 20_000)).toEqual({ devices: 2, cameOnline: false }); // idempotent, replaces
      expect(await s.disconnect('n2', 'alice', 'phone', t0 + 21_000)).toBe(2);
      expect(await s.disconnect('n2', 'alice', 'phone', t0 + 21_000)).toBe(1);
      expect(await s.devices('alice')).toEqual([{ node: 'n1', device: 'laptop' }]);
      // a user that had gone offline comes online again through reconnect
      await s.heartbeat('n2', t0);
      await s.connect('n2', 'bob', 'phone', t0);
      await s.expire(t0 + 20_000, 15_000);
      expect(await s.isOnline('bob')).toBe(false);
      expect(await s.reconnect('n2', 'bob', new Map([['phone', 1]]), t0 + 20_000)).toEqual({ devices: 1, cameOnline: true });
    });

    it('removeNode: a node starting again under its id clears its previous life at once', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.connect('n2', 'alice', 'laptop', t0);
      await s.connect('n1', 'bob', 'phone', t0);
      await s.heartbeat('n1', t0 + 1_000);
      expect(await s.removeNode('n1')).toEqual([{ user: 'bob', lastSeen: t0 + 1_000 }]);
      expect(await s.removeNode('n1')).toEqual([]);
      expect(await s.removeNode('never-seen')).toEqual([]);
      expect(await s.devices('alice')).toEqual([{ node: 'n2', device: 'laptop' }]);
      expect(await s.isOnline('bob')).toBe(false);
      expect(await s.heartbeat('n1', t0 + 2_000)).toBe(false);
      expect(await s.connect('n1', 'bob', 'phone', t0 + 2_000)).toEqual({ devices: 1, cameOnline: true });
    });

    it('users are independent', async () => {
      await s.connect('n1', 'alice', 'phone', t0);
      await s.connect('n1', 'bob', 'phone', t0);
      await s.disconnect('n1', 'alice', 'phone', t0);
      expect(await s.settleOffline('alice', t0, 0)).toBe(t0);
      expect(await s.isOnline('bob')).toBe(true);
      expect(await s.devices('bob')).toEqual([{ node: 'n1', device: 'phone' }]);
    });
  });
}

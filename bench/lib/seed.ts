// Seeding many chat users for the fan-out and sync scenarios. Registration over HTTP
// costs one scrypt hash per user on the broker (about 21/s on one core here), so 10,000
// members would take 8 minutes. Instead the bench writes the accounts through the
// project's own store (core/store.ts: createUser with one shared scrypt hash of
// BENCH_PASSWORD, so each could still log in) and gets each member a long-lived device
// token from the project's own AuthService.createDeviceToken (the IoT path of DESIGN
// section 4), signed with the JWT_SECRET the bench then gives the broker. Nothing here
// bypasses the broker at run time: members still connect with a token the broker checks.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { openDb } from '../../core/db.ts';
import { migrate } from '../../core/migrate.ts';
import { ChatStore } from '../../core/store.ts';
import { systemClock } from '../../core/clock.ts';
import { AuthService, hashPassword } from '../../broker/auth.ts';
import type { ChatUser } from './protocol.ts';
import { BENCH_PASSWORD } from './ours.ts';
import { pool } from './pool.ts';

export interface Seeded {
  jwtSecret: string;
  users: ChatUser[];
  ms: number;
}

/**
 * Create `names` users with device `device` in the embedded store under dataDir (the
 * broker must not be running on it: PGlite is single-process) or in databaseUrl.
 */
export async function seedUsers(o: { dataDir?: string; databaseUrl?: string; names: readonly string[]; device: string; jwtSecret?: string }): Promise<Seeded> {
  const t0 = performance.now();
  const jwtSecret = o.jwtSecret ?? randomBytes(32).toString('base64url');
  // broker/platform.ts keeps the embedded database in DATA_DIR/pglite.
  const db = await openDb(o.databaseUrl ? { databaseUrl: o.databaseUrl } : { pgliteDir: join(o.dataDir ?? '.', 'pglite') });
  try {
    await migrate(db);
    const store = new ChatStore(db);
    const auth = new AuthService(store, new TextEncoder().encode(jwtSecret), { accessTokenTtlSeconds: 3600, refreshTokenTtlDays: 30, deviceTokenTtlDays: 30 }, systemClock);
    const hash = await hashPassword(BENCH_PASSWORD);
    const now = Date.now();
    const users = await pool(o.names, 16, async (name): Promise<ChatUser> => {
      await store.createUser(name, hash, now);
      const t = await auth.createDeviceToken(name, o.device, 30);
      return { user: name, device: o.device, token: t.token };
    });
    return { jwtSecret, users, ms: performance.now() - t0 };
  } finally {
    await db.close();
  }
}

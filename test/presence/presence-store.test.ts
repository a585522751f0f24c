import { MemoryPresenceStore } from '../../broker/presence-store.ts';
import { RedisPresenceStore } from '../../broker/presence-redis.ts';
import { uniquePrefix } from '../helpers/services.ts';
import { connectRedis, deleteKeys } from './redis.ts';
import { presenceStoreContract } from './presence-store.contract.ts';

presenceStoreContract('memory', async () => ({ store: new MemoryPresenceStore(), cleanup: async () => {} }));

presenceStoreContract('Redis', async () => {
  const redis = await connectRedis();
  const prefix = uniquePrefix('presence');
  const store = new RedisPresenceStore({ redis, prefix });
  return {
    store,
    async cleanup() {
      await store.close();
      await deleteKeys(redis, prefix);
      await redis.quit();
    },
  };
});

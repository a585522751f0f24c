import { openDb } from '../core/db.ts';
import { storeContract } from './store.contract.ts';
import { createTestDatabase } from './helpers/services.ts';

storeContract('PGlite', async () => ({ db: await openDb({}), cleanup: async () => {} }));

storeContract('PostgreSQL', async () => {
  const t = await createTestDatabase();
  return { db: await openDb({ databaseUrl: t.url }), cleanup: () => t.drop() };
});

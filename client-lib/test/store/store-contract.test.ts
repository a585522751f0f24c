/**
 * The LocalStore contract on the Node implementations. (IndexedDB runs the same cases in
 * headless Chromium: integration/browser.test.ts.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { storeContractCases, type StoreFactory } from './contract.ts';

function describeStoreContract(name: string, factory: StoreFactory, persistent: boolean): void {
  describe(`LocalStore contract: ${name}`, () => {
    // Cases about surviving a restart only apply to stores that persist.
    for (const contractCase of storeContractCases.filter((c) => persistent || !c.persistentOnly)) {
      it(contractCase.name, async () => {
        const handle = await factory();
        try {
          await contractCase.run(handle);
        } finally {
          await handle.store.close();
        }
      });
    }
  });
}

describeStoreContract('memory', async () => ({ store: new MemoryStore() }), false);

const directory = mkdtempSync(join(tmpdir(), 'client-lib-sqlite-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let fileCounter = 0;

describeStoreContract(
  'sqlite',
  async () => {
    const path = join(directory, `store-${++fileCounter}.db`);
    const store = new SqliteStore({ path });
    return {
      store,
      reopen: async () => {
        await store.close();
        return new SqliteStore({ path });
      },
    };
  },
  true,
);

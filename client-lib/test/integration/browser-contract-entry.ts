/**
 * Bundled for the browser page by browser.test.ts: runs the LocalStore contract suite on
 * IndexedDbStore inside Chromium.
 */
import { IndexedDbStore } from '../../src/store/indexeddb.ts';
import { runStoreContract, type CaseResult } from '../store/contract.ts';

let counter = 0;

export async function runIndexedDbContract(): Promise<CaseResult[]> {
  return runStoreContract(async () => {
    const name = `contract-${Date.now()}-${++counter}`;
    const store = await IndexedDbStore.open(name);
    return {
      store,
      reopen: async () => {
        await store.close();
        return IndexedDbStore.open(name);
      },
    };
  }, true);
}

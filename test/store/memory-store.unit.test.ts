import { MemoryStore, type MemoryTx } from '@oncely/core/testing';
import { storeContract } from './store-contract.js';

storeContract<MemoryTx>('MemoryStore', async () => {
  const store = new MemoryStore();
  return {
    store,
    write: async (tx, key, value) => tx.set(key, value),
    read: async (key) => store.data.get(key) as string | undefined,
  };
});

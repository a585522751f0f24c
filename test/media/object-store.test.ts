import { FakeClock, systemClock } from '../../core/clock.ts';
import { S3ObjectStore } from '../../workers/media/s3-store.ts';
import { objectStoreContract } from './object-store.contract.ts';
import { s3rverCredentials, startLocalStore, startS3rver } from './helpers.ts';

objectStoreContract('local directory', async () => {
  const clock = new FakeClock(Date.now());
  const restoreDelaySeconds = 30;
  const s = await startLocalStore(clock, restoreDelaySeconds);
  return {
    store: s.store,
    origin: s.origin,
    passTime: async (ms) => clock.advance(ms),
    completeRestores: async () => clock.advance(restoreDelaySeconds * 1000),
    differences: { verifiesSignatures: true, enforcesArchive: true },
    cleanup: s.close,
  };
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

for (const tierMode of ['storage-class', 'bucket'] as const) {
  objectStoreContract(`S3 on s3rver (${tierMode})`, async () => {
    const buckets = { hot: 'media-hot', warm: 'media-warm', cold: 'media-cold' };
    const server = await startS3rver(Object.values(buckets));
    const store = new S3ObjectStore({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: s3rverCredentials,
      tierMode,
      buckets: tierMode === 'bucket' ? buckets : { hot: buckets.hot, warm: buckets.hot, cold: buckets.hot },
      storageClasses: { hot: 'STANDARD', warm: 'STANDARD_IA', cold: 'GLACIER' },
      restoreTier: 'Standard',
      clock: systemClock,
    });
    return {
      store,
      origin: server.endpoint,
      // s3rver judges presigned URLs by its own wall clock.
      passTime: (ms) => sleep(ms),
      // s3rver has no RestoreObject: the driver's fallback completes a restore at once.
      completeRestores: async () => {},
      differences: { verifiesSignatures: false, enforcesArchive: false },
      cleanup: server.close,
    };
  });
}

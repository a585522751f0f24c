import { S3ObjectStore } from '../../workers/media/s3-store.ts';
import { mediaEndToEnd } from './media.e2e.ts';
import { s3rverCredentials, startS3rver } from './helpers.ts';

// The same story on S3 (s3rver, one bucket, a tier is a storage class), built from config
// the way the broker builds it.
mediaEndToEnd('S3 on s3rver', async (clock, config) => {
  const server = await startS3rver(['chat-media']);
  const objects = S3ObjectStore.fromConfig(
    { s3Endpoint: server.endpoint, s3Bucket: 'chat-media', media: { ...config, s3: { ...config.s3, ...s3rverCredentials } } },
    clock,
  );
  // s3rver has no RestoreObject: the driver's fallback makes a cold item readable at once.
  return { objects, restoreTakesTime: false, cleanup: server.close };
});

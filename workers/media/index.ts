/**
 * Media: what the broker, the worker process and the CLI compose. The pieces:
 *   openObjectStore(config)                         -> ObjectStore (local or S3, by config)
 *   new MediaService({db, chat, objects, config})   -> the API core (HTTP routes, RPC)
 *   registerMediaRoutes(app, {media, authenticate}) -> DESIGN section 7 routes (+ /v1/blobs for local)
 *   new TieringWorker({db, objects, config}).start() -> the cron job (once per cluster)
 *   createMediaMetrics(registry)                    -> gauges; pass as `metrics` to the worker
 */
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';
import type { MediaConfig } from './config.ts';
import { LocalObjectStore } from './local-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3ObjectStore } from './s3-store.ts';

export { mediaConfigSchema, defaultMediaConfig, type MediaConfig, type Tier } from './config.ts';
export type { ObjectStore, TierState, SignedUrl } from './object-store.ts';
export { LocalObjectStore } from './local-store.ts';
export { S3ObjectStore } from './s3-store.ts';
export { MediaService, parseUploadRequest, downloadJson, type MediaRecord, type MediaDownload, type UploadRequest, type UploadTicket } from './service.ts';
export { registerMediaRoutes, registerBlobRoutes, type MediaRouteDeps } from './routes.ts';
export { TieringWorker, type TieringReport, type TieringPlan } from './tiering.ts';
export { createMediaMetrics, type MediaMetrics } from './metrics.ts';

/** The part of the app config media reads (config/index.ts `Config` has it). */
export interface MediaHostConfig {
  dataDir: string;
  s3Endpoint?: string;
  s3Bucket?: string;
  media: MediaConfig;
}

export function mediaDriverOf(config: MediaHostConfig): 'local' | 's3' {
  if (config.media.driver !== 'auto') return config.media.driver;
  return config.s3Bucket || config.media.s3.buckets.hot ? 's3' : 'local';
}

/** The configured store: S3 when S3_BUCKET is set (or driver 's3'), else DATA_DIR/media. */
export async function openObjectStore(config: MediaHostConfig, clock: Clock = systemClock): Promise<ObjectStore> {
  return mediaDriverOf(config) === 's3' ? S3ObjectStore.fromConfig(config, clock) : LocalObjectStore.open(config.media, config.dataDir, clock);
}

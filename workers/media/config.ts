/**
 * The `media` section of the config (config/index.ts embeds this schema; the values in
 * config/default.json are these defaults written out, and a test keeps the two equal).
 * Every field has a default so a partial `media` object in config/local.json or
 * CONFIG_FILE only changes what it names. S3_ENDPOINT and S3_BUCKET stay top-level keys
 * (DESIGN section 8); credentials come from here or from the AWS SDK's default chain
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
 */
import { z } from 'zod';

const tierSchema = z.enum(['hot', 'warm', 'cold']);
const s3StorageClass = z.enum([
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'GLACIER',
  'DEEP_ARCHIVE',
  'REDUCED_REDUNDANCY',
]);
const days = z.number().min(0);
const factor = z.number().positive();
const bytes = z.number().int().min(0);

/** Thresholds and multipliers of the tiering rules (workers/media/tiering-rules.ts). */
export const tieringRulesSchema = z.object({
  /** Message age below which an item always stays hot (it is still being looked at). */
  minHotAgeDays: days.default(7),
  /** Idle time (since last access) after which an item goes warm, before factors. */
  warmAfterIdleDays: days.default(30),
  /** Idle time after which an item goes cold, before factors. */
  coldAfterIdleDays: days.default(120),
  /** Items at most this big never leave hot: IA and Glacier bill a minimum object size
   *  (128 KiB and 40 KiB), so moving small objects saves nothing and costs transitions. */
  keepHotMaxBytes: bytes.default(131_072),
  /** Read by every member of the conversation: thresholds multiplied by this. */
  readByAllFactor: factor.default(0.5),
  /** The owner (uploader) has not been seen for this long: thresholds times the factor. */
  inactiveOwnerDays: days.default(90),
  inactiveOwnerFactor: factor.default(0.5),
  /** Items at least this big: thresholds times the factor (they cost the most to keep hot). */
  largeObjectBytes: bytes.default(52_428_800),
  largeObjectFactor: factor.default(0.5),
  /** Content-type pattern (`video/*`, `application/pdf`) -> factor; the most specific match wins. */
  contentTypeFactors: z.record(z.string(), factor).default({ 'video/*': 0.5, 'audio/*': 1, 'image/*': 1, 'application/pdf': 2 }),
  /** A group with at least this many members that is still engaged keeps media hot longer. */
  largeGroupMembers: z.number().int().min(1).default(50),
  /** Engaged: at least this many messages per member in the last 7 days. */
  engagedMessagesPerMemberPerWeek: z.number().min(0).default(0.5),
  engagedGroupFactor: factor.default(2),
  /** A conversation without a message for this long: thresholds times the factor. */
  inactiveConversationDays: days.default(60),
  inactiveConversationFactor: factor.default(0.5),
  /** Delete items whose message is older than this (0 = keep forever); their messages keep a tombstone. */
  retentionDays: days.default(0),
  /** Never move to cold an item that retention deletes sooner than this (Glacier bills 90 days minimum). */
  coldMinStorageDays: days.default(90),
});

export const mediaConfigSchema = z.object({
  /** `auto`: S3 when S3_BUCKET is set, else the local directory. */
  driver: z.enum(['auto', 'local', 's3']).default('auto'),
  maxBytes: z.number().int().min(1).max(5 * 1024 ** 3, 'must be at most 5 GiB (one S3 CopyObject)').default(104_857_600),
  /** Allowed content types; `type/*` matches a whole family. */
  contentTypes: z.array(z.string().min(3)).min(1).default([
    'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/heic', 'image/avif',
    'video/mp4', 'video/webm', 'video/quicktime',
    'audio/mpeg', 'audio/mp4', 'audio/ogg', 'audio/webm', 'audio/aac',
    'application/pdf', 'application/zip', 'application/octet-stream', 'text/plain',
  ]),
  maxAttachmentsPerMessage: z.number().int().min(1).default(10),
  /** Uploads not completed yet, per user; more is `rate_limited`. */
  maxPendingUploadsPerUser: z.number().int().min(1).default(20),
  uploadUrlTtlSeconds: z.number().int().min(10).max(604_800).default(900),
  downloadUrlTtlSeconds: z.number().int().min(10).max(604_800).default(300),
  /** A read updates last_access_at at most once per this many seconds per item. */
  accessResolutionSeconds: z.number().int().min(0).default(3600),
  /** Retry-After of a 202 while a cold item is restored. */
  restoreRetryAfterSeconds: z.number().int().min(1).default(300),
  /** How long a restored cold item stays readable before it needs restoring again. */
  restoreDays: z.number().int().min(1).default(7),
  local: z.object({
    /** Root directory; default DATA_DIR/media. */
    dir: z.string().min(1).optional(),
    /** Per-tier directories (e.g. cold on a slower disk); default <dir>/<tier>. */
    tierDirs: z.object({ hot: z.string().min(1).optional(), warm: z.string().min(1).optional(), cold: z.string().min(1).optional() }).default({}),
    /** HMAC key of signed URLs; default a random key kept in <dir>/.signing-key. */
    signingSecret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Emulated archive retrieval time of a cold item (0: restored at once). */
    restoreDelaySeconds: z.number().int().min(0).default(0),
    /** Path prefix of the signed blob URLs on the API origin. */
    urlPrefix: z.string().startsWith('/').default('/v1/blobs'),
  }).prefault({}),
  s3: z.object({
    region: z.string().min(1).default('us-east-1'),
    /** Default: true when S3_ENDPOINT is set (MinIO, s3rver and most S3-compatible stores need it). */
    forcePathStyle: z.boolean().optional(),
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    /** Endpoint clients reach when it differs from S3_ENDPOINT (e.g. inside docker-compose); signed URLs use it. */
    publicEndpoint: z.string().url().optional(),
    /** `storage-class`: one bucket, a tier is a storage class. `bucket`: a bucket per tier. */
    tierMode: z.enum(['storage-class', 'bucket']).default('storage-class'),
    storageClasses: z.object({ hot: s3StorageClass, warm: s3StorageClass, cold: s3StorageClass })
      .default({ hot: 'STANDARD', warm: 'STANDARD_IA', cold: 'GLACIER' }),
    /** Bucket per tier in `bucket` mode; hot defaults to S3_BUCKET. */
    buckets: z.object({ hot: z.string().min(3).optional(), warm: z.string().min(3).optional(), cold: z.string().min(3).optional() }).default({}),
    restoreTier: z.enum(['Expedited', 'Standard', 'Bulk']).default('Standard'),
  }).prefault({}),
  thumbnail: z.object({
    enabled: z.boolean().default(true),
    /** Byte budget of one preview (constrained devices). */
    maxBytes: z.number().int().min(256).max(65_536).default(2048),
    /** Largest side of the preview in pixels, before the budget shrinks it. */
    maxDimension: z.number().int().min(8).max(512).default(96),
    format: z.enum(['jpeg', 'webp']).default('jpeg'),
    /** Images bigger than this get no preview (decoding cost). */
    maxSourceBytes: z.number().int().min(1).default(26_214_400),
    /** Decompression-bomb guard passed to sharp. */
    maxInputPixels: z.number().int().min(1).default(40_000_000),
  }).prefault({}),
  tiering: z.object({
    enabled: z.boolean().default(true),
    /** node-cron expression (seconds optional). */
    schedule: z.string().min(9).default('17 3 * * *'),
    batchSize: z.number().int().min(1).max(10_000).default(500),
    /** Pending uploads older than the upload URL TTL plus this are removed. */
    abandonedUploadGraceSeconds: z.number().int().min(0).default(3600),
    rules: tieringRulesSchema.prefault({}),
  }).prefault({}),
  /** Storage prices per GiB-month for the operator view (defaults: AWS us-east-1 list prices). */
  prices: z.object({
    currency: z.string().min(1).default('USD'),
    perGbMonth: z.object({ hot: z.number().min(0), warm: z.number().min(0), cold: z.number().min(0) })
      .default({ hot: 0.023, warm: 0.0125, cold: 0.0036 }),
  }).prefault({}),
});

export type MediaConfig = z.infer<typeof mediaConfigSchema>;
export type TieringRulesConfig = z.infer<typeof tieringRulesSchema>;
export type Tier = z.infer<typeof tierSchema>;
export type S3StorageClass = z.infer<typeof s3StorageClass>;
/** Hottest first. */
export const tiers: readonly Tier[] = tierSchema.options;

/** The defaults, for tests and for callers that build a service without loadConfig. */
export function defaultMediaConfig(overrides: Partial<Record<keyof MediaConfig, unknown>> = {}): MediaConfig {
  return mediaConfigSchema.parse(overrides);
}

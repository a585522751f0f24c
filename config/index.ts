/**
 * Configuration: defaults < config/*.json < environment variables, validated by one
 * schema at boot. A bad value stops the process with a message naming the key
 * (DESIGN section 8).
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { mediaConfigSchema } from '../workers/media/config.ts';
import { limitsSchema, anonymousRulesSchema } from './limits.ts';

const port = z.coerce.number().int().min(0).max(65535);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'on', 'off', 'yes', 'no'])])
  .transform((v) => (typeof v === 'boolean' ? v : ['true', '1', 'on', 'yes'].includes(v)));
const optionalString = z.string().min(1).optional();

export const configSchema = z.object({
  mqttPort: port,
  httpPort: port,
  host: z.string().min(1),
  dataDir: z.string().min(1),
  databaseUrl: optionalString,
  redisUrl: optionalString,
  s3Endpoint: optionalString,
  s3Bucket: optionalString,
  jwtSecret: z.string().min(32, 'must be at least 32 characters').optional(),
  maxPayloadBytes: z.coerce.number().int().min(256).max(16 * 1024 * 1024),
  fanoutWriteMax: z.coerce.number().int().min(1),
  mqttAnonymous: bool,
  accessTokenTtlSeconds: z.coerce.number().int().min(10),
  refreshTokenTtlDays: z.coerce.number().int().min(1),
  deviceTokenTtlDays: z.coerce.number().int().min(1),
  presenceDebounceMs: z.coerce.number().int().min(0),
  typingMinIntervalMs: z.coerce.number().int().min(0),
  tlsCert: optionalString,
  tlsKey: optionalString,
  mqttsPort: port.optional(),
  httpsPort: port.optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** 'all': listeners, ingest and delivery in one process; 'broker': listeners and ingest only (cluster). */
  role: z.enum(['all', 'broker']).default('all'),
  /** Prefix of every Redis key and channel of ours (cluster mode). */
  redisPrefix: z.string().regex(/^[A-Za-z0-9_:.-]*$/, 'letters, digits and _ : . - only').default('chat:'),
  /** Delivery jobs: retries with backoff, then the dead-letter store (workers/delivery-queue.ts). */
  deliveryMaxAttempts: z.coerce.number().int().min(1).max(100).default(6),
  deliveryBaseDelayMs: z.coerce.number().int().min(1).default(100),
  deliveryMaxDelayMs: z.coerce.number().int().min(1).default(30_000),
  /** A job pending this long on a consumer that stopped answering is reclaimed by another. */
  deliveryClaimIdleMs: z.coerce.number().int().min(100).default(30_000),
  /**
   * Fault injection for resilience tests, off by default: delay every delivery job, or
   * fail every job with a topic matching a regular expression (docs/delivery.md).
   */
  chaosDeliveryDelayMs: z.coerce.number().int().min(0).default(0),
  chaosDeliveryFailTopic: z.string().min(1).optional(),
  /** This process in the cluster's registries; default {hostname}-{pid}-{random}. */
  nodeId: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/).optional(),
  /** Media storage and tiering (workers/media/config.ts; every field has a default). */
  media: mediaConfigSchema.prefault({}),
  /** Rate limits, MQTT bounds, login throttling (config/limits.ts, docs/hardening.md; every field has a default). */
  limits: limitsSchema,
  /** Allow/deny rules for topics outside the chat namespaces when mqttAnonymous is on; first match wins. */
  anonymousRules: anonymousRulesSchema,
  /** false: no plain MQTT and HTTP listeners, only MQTTS and HTTPS/WSS (needs tlsCert and tlsKey). */
  plainListeners: bool.default(true),
});

export type Config = z.infer<typeof configSchema>;

/** Environment variable -> config key. Every deployment and test relies on these names. */
export const envKeys: Record<string, keyof Config> = {
  MQTT_PORT: 'mqttPort',
  HTTP_PORT: 'httpPort',
  HOST: 'host',
  DATA_DIR: 'dataDir',
  DATABASE_URL: 'databaseUrl',
  REDIS_URL: 'redisUrl',
  S3_ENDPOINT: 's3Endpoint',
  S3_BUCKET: 's3Bucket',
  JWT_SECRET: 'jwtSecret',
  MAX_PAYLOAD_BYTES: 'maxPayloadBytes',
  FANOUT_WRITE_MAX: 'fanoutWriteMax',
  MQTT_ANONYMOUS: 'mqttAnonymous',
  ACCESS_TOKEN_TTL_SECONDS: 'accessTokenTtlSeconds',
  PRESENCE_DEBOUNCE_MS: 'presenceDebounceMs',
  TLS_CERT: 'tlsCert',
  TLS_KEY: 'tlsKey',
  MQTTS_PORT: 'mqttsPort',
  HTTPS_PORT: 'httpsPort',
  LOG_LEVEL: 'logLevel',
  ROLE: 'role',
  REDIS_PREFIX: 'redisPrefix',
  NODE_ID: 'nodeId',
  DELIVERY_MAX_ATTEMPTS: 'deliveryMaxAttempts',
  DELIVERY_BASE_DELAY_MS: 'deliveryBaseDelayMs',
  DELIVERY_MAX_DELAY_MS: 'deliveryMaxDelayMs',
  DELIVERY_CLAIM_IDLE_MS: 'deliveryClaimIdleMs',
  CHAOS_DELIVERY_DELAY_MS: 'chaosDeliveryDelayMs',
  CHAOS_DELIVERY_FAIL_TOPIC: 'chaosDeliveryFailTopic',
  LIMITS: 'limits',
  MQTT_ANONYMOUS_RULES: 'anonymousRules',
  PLAIN_LISTENERS: 'plainListeners',
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const configDir = dirname(fileURLToPath(import.meta.url));

function readJson(path: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error('not a JSON object');
    }
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([`${path}: ${(err as Error).message}`]);
  }
}

/**
 * Builds the config from layers. `files` defaults to config/default.json then
 * config/local.json (if present) then CONFIG_FILE (if set); `overrides` win over all
 * (used by tests and by the in-process platform).
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Config> = {},
  files: string[] = defaultFiles(env),
): Config {
  const merged: Record<string, unknown> = {};
  for (const file of files) Object.assign(merged, readJson(file));
  const fromEnv: Record<string, string> = {};
  for (const [name, key] of Object.entries(envKeys)) {
    const value = env[name];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  Object.assign(merged, fromEnv, overrides);
  const keyToEnv = Object.fromEntries(Object.entries(envKeys).map(([e, k]) => [k, e]));
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const key = issue.path.join('.');
        const envName = keyToEnv[key];
        const where = envName && fromEnv[key] !== undefined ? `${key} (env ${envName})` : key;
        return `${where}: ${issue.message}`;
      }),
    );
  }
  return result.data;
}

function defaultFiles(env: NodeJS.ProcessEnv): string[] {
  const files = [join(configDir, 'default.json')];
  const local = join(configDir, 'local.json');
  if (existsSync(local)) files.push(local);
  if (env.CONFIG_FILE) files.push(env.CONFIG_FILE);
  return files;
}

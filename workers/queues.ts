/** The delivery queue of this deployment: Redis Streams with REDIS_URL, else in process. */
import type { Config } from '../config/index.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import { MemoryDeliveryQueue, type DeadLetter, type DeliveryQueue } from './delivery-queue.ts';
import { RedisDeliveryQueue } from './delivery-queue-redis.ts';

export function createDeliveryQueue(o: { config: Config; clock: Clock; metrics: Metrics; log: Logger; consumer: string }): DeliveryQueue {
  const onDeadLetter = (d: DeadLetter) => {
    o.metrics.deadLetters.inc();
    o.log.error({ deadLetter: d.id, attempts: d.attempts, error: d.error }, 'delivery job dead-lettered');
  };
  const onRetry = () => o.metrics.retries.inc();
  const policy = { maxAttempts: o.config.deliveryMaxAttempts, baseDelayMs: o.config.deliveryBaseDelayMs, maxDelayMs: o.config.deliveryMaxDelayMs };
  if (!o.config.redisUrl) return new MemoryDeliveryQueue(o.clock, policy, undefined, onDeadLetter, onRetry);
  return new RedisDeliveryQueue({
    redisUrl: o.config.redisUrl,
    prefix: o.config.redisPrefix,
    consumer: o.consumer,
    clock: o.clock,
    policy,
    claimIdleMs: o.config.deliveryClaimIdleMs,
    onDeadLetter,
    onRetry,
    onReclaim: (n: number) => o.metrics.reclaims.inc(n),
    onError: (err: Error) => o.log.warn({ err: err.message }, 'delivery queue: redis error'),
  });
}

/**
 * Wraps a job handler with the configured fault injection (config chaosDelivery*), so
 * that resilience tests can hold jobs in flight or make them fail; a no-op by default.
 */
export function withChaos<J extends { topics?: string[] }>(config: Config, topicsOf: (job: J) => Promise<string[]>, handler: (job: J) => Promise<void>): (job: J) => Promise<void> {
  const delay = config.chaosDeliveryDelayMs;
  const fail = config.chaosDeliveryFailTopic ? new RegExp(config.chaosDeliveryFailTopic) : undefined;
  if (!delay && !fail) return handler;
  return async (job) => {
    if (delay) await new Promise((r) => setTimeout(r, delay));
    if (fail && (await topicsOf(job)).some((t) => fail.test(t))) throw new Error('chaos: injected delivery failure');
    await handler(job);
  };
}

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
  if (!o.config.redisUrl) return new MemoryDeliveryQueue(o.clock, undefined, undefined, onDeadLetter, onRetry);
  return new RedisDeliveryQueue({
    redisUrl: o.config.redisUrl,
    prefix: o.config.redisPrefix,
    consumer: o.consumer,
    clock: o.clock,
    onDeadLetter,
    onRetry,
    onReclaim: (n: number) => o.metrics.reclaims.inc(n),
    onError: (err: Error) => o.log.warn({ err: err.message }, 'delivery queue: redis error'),
  });
}

// Redis connections. Workers and event listeners block on Redis and must survive reconnects, so their
// commands retry forever (maxRetriesPerRequest: null, as BullMQ requires); the gateway's client fails a
// command after a couple of reconnect tries so a request answers 503 instead of hanging.
import { Redis } from 'ioredis';

export type RedisRole = 'client' | 'worker';

export function createRedis(url: string, role: RedisRole): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: role === 'worker' ? null : 2,
    // Reconnect quickly and keep trying: a restarted Redis must be picked up again without a process restart.
    retryStrategy: (times) => Math.min(50 * times, 1_000),
    connectionName: `mvp-${role}-${process.pid}`,
  });
}

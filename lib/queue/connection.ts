// Redis connections. Workers and event listeners block on Redis and must survive reconnects, so their
// commands retry forever (maxRetriesPerRequest: null, as BullMQ requires); the gateway's client fails a
// command after a couple of reconnect tries so a request answers 503 instead of hanging.
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

export type RedisRole = 'client' | 'worker';

export function createRedis(url: string, role: RedisRole, log?: Logger): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: role === 'worker' ? null : 2,
    // Reconnect quickly and keep trying: a restarted Redis must be picked up again without a process restart.
    retryStrategy: (times) => Math.min(50 * times, 1_000),
    connectionName: `mvp-${role}-${process.pid}`,
  });
  // Connection errors are retried by retryStrategy; log them once per outage instead of ioredis's
  // "Unhandled error event" on every reconnect attempt.
  let down = false;
  redis.on('error', (err) => {
    if (!down) log?.warn({ err: err.message, role }, 'redis connection lost; reconnecting');
    down = true;
  });
  redis.on('ready', () => {
    if (down) log?.info({ role }, 'redis connection restored');
    down = false;
  });
  return redis;
}

/** True when a Redis server answers PING at `url` (one short-lived connection, no retries). */
export async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined); // refused while a server is down or starting: expected
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

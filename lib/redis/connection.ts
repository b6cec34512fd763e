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

/**
 * Commands issued during one turn of the event loop (by one request, or by every request handled in it) go
 * out as one socket write: the socket is corked at the first command and uncorked in setImmediate, after
 * the turn's I/O callbacks and their promise continuations. That is the syscall saving of ioredis
 * auto-pipelining without its cost: each auto-pipeline flush builds an ioredis Pipeline, which copies every
 * script defined on the connection (BullMQ defines ~60 on a connection its Queue uses), ~100 µs apiece, and
 * wraps every command in a second promise. Commands are still sent, and answered, in the order issued.
 */
export function coalesceWrites(redis: Redis): void {
  const send = redis.sendCommand;
  let corked = false;
  redis.sendCommand = function (this: Redis, command, stream) {
    const socket = this.stream;
    if (!corked && !stream && this.status === 'ready' && socket?.writable) {
      corked = true;
      socket.cork();
      setImmediate(() => {
        corked = false;
        socket.uncork();
      });
    }
    return send.call(this, command, stream);
  } as Redis['sendCommand'];
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

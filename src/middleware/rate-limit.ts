// Per-key rate limit in Redis: a fixed window counter (INCR + PEXPIRE, auto-pipelined into one round trip).
// Every answer carries the IETF RateLimit-Policy / RateLimit headers; a refused request gets 429 with
// Retry-After.
import type { MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import type { AppEnv } from '../context.js';
import { ProblemError } from './problem.js';

export function rateLimit(redis: Redis, keyPrefix: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const { id, rate_limit: limit, rate_limit_window_s: windowS } = c.var.apiKey;
    const windowMs = windowS * 1000;
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    const key = `${keyPrefix}:rl:${id}:${window}`;
    const [count] = await Promise.all([redis.incr(key), redis.pexpire(key, windowMs)]);
    const resetS = Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000));
    const headers = {
      'ratelimit-policy': `"per-key";q=${limit};w=${windowS}`,
      ratelimit: `"per-key";r=${Math.max(0, limit - count)};t=${resetS}`,
    };
    if (count > limit) {
      throw new ProblemError(429, 'rate-limited', 'Too many requests',
        `key ${id} may make ${limit} requests per ${windowS} s; retry in ${resetS} s`, undefined,
        { ...headers, 'retry-after': String(resetS) });
    }
    for (const [h, v] of Object.entries(headers)) c.header(h, v);
    await next();
  };
}

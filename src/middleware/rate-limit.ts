// Per-key rate limit in Redis: a fixed window counter (INCR + PEXPIRE in one script: one command per request).
// Every answer carries the IETF RateLimit-Policy / RateLimit headers; a refused request gets 429 with
// Retry-After. POST /v1/perceive counts itself in the same script as its quota reservation (admission.ts);
// every other /v1 route uses the middleware.
import type { Context, MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import type { ApiKeyConfig } from '../../lib/config.js';
import { defineScript } from '../../lib/queue/index.js';
import type { AppEnv } from '../context.js';
import { ProblemError } from './problem.js';
import { setResponseHeader } from './response-headers.js';

export interface RateState {
  key: ApiKeyConfig;
  count: number;
  resetS: number;
}

/** Lua: counts one request in the window counter `key`, which expires `windowMs` after its last count. */
export const RATE_HIT_LUA = `
local function rateHit(key, windowMs)
  local n = redis.call('INCR', key)
  redis.call('PEXPIRE', key, windowMs)
  return n
end
`;

const HIT = `${RATE_HIT_LUA}
return rateHit(KEYS[1], ARGV[1])
`;

/** The counter a request of a key is counted in now. */
export interface RateWindow {
  redisKey: string;
  windowMs: number;
  /** Seconds until the window ends. */
  resetS: number;
}

export class RateLimiter {
  private readonly incr: (key: string, windowMs: number) => Promise<unknown>;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    this.incr = defineScript(redis, 'mvpRateLimitHit', 1, HIT);
  }

  /** The current window of `key`. */
  window(key: ApiKeyConfig): RateWindow {
    const windowMs = key.rate_limit_window_s * 1000;
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    const resetS = Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000));
    return { redisKey: `${this.prefix}:rl:${key.id}:${window}`, windowMs, resetS };
  }

  /** Counts one request of `key` in the current window. */
  async hit(key: ApiKeyConfig): Promise<RateState> {
    const w = this.window(key);
    return { key, count: (await this.incr(w.redisKey, w.windowMs)) as number, resetS: w.resetS };
  }
}

/** Sets the RateLimit headers, or throws 429 when the window's budget is spent. */
export function applyRateLimit(c: Context<AppEnv>, { key, count, resetS }: RateState): void {
  const headers = {
    'ratelimit-policy': `"per-key";q=${key.rate_limit};w=${key.rate_limit_window_s}`,
    ratelimit: `"per-key";r=${Math.max(0, key.rate_limit - count)};t=${resetS}`,
  };
  if (count > key.rate_limit) {
    throw new ProblemError(429, 'rate-limited', 'Too many requests',
      `key ${key.id} may make ${key.rate_limit} requests per ${key.rate_limit_window_s} s; retry in ${resetS} s`, undefined,
      { ...headers, 'retry-after': String(resetS) });
  }
  for (const [h, v] of Object.entries(headers)) setResponseHeader(c, h, v);
}

export function rateLimit(limiter: RateLimiter): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    applyRateLimit(c, await limiter.hit(c.var.apiKey));
    await next();
  };
}

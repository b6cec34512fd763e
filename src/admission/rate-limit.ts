// Per-key rate limit in Redis: a fixed-window counter, one script per request (rateLimitHit-1.lua; POST
// /v1/perceive counts itself inside its submit script instead). Every answer carries the IETF RateLimit-Policy /
// RateLimit headers; a refused request gets 429 with Retry-After.
import type { Context } from 'hono';
import type { Redis } from 'ioredis';
import type { ApiKeyConfig } from '../../lib/config.js';
import { rateLimitHit, runScript } from '../../lib/redis/index.js';
import type { AppEnv } from '../context.js';
import { ProblemError } from '../problem.js';
import { setResponseHeader } from '../response-headers.js';

export interface RateState {
  key: ApiKeyConfig;
  count: number;
  resetS: number;
}

/** The counter a request of a key is counted in now. */
export interface RateWindow {
  counterKey: string;
  windowMs: number;
  limit: number;
  /** Seconds until the window ends. */
  resetS: number;
}

export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The current window of `key`. */
  window(key: ApiKeyConfig): RateWindow {
    const windowMs = key.rate_limit_window_s * 1000;
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    const resetS = Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000));
    return { counterKey: `${this.prefix}:rl:${key.id}:${window}`, windowMs, limit: key.rate_limit, resetS };
  }

  /** Counts one request of `key` in the current window. */
  async hit(key: ApiKeyConfig): Promise<RateState> {
    const w = this.window(key);
    return { key, count: (await runScript(this.redis, rateLimitHit, w)) as number, resetS: w.resetS };
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

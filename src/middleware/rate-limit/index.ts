// Counts each request of the authenticated key against its rate limit (src/admission/rate-limit.ts): sets the
// RateLimit headers, or answers 429 once the window's budget is spent.
import type { MiddlewareHandler } from 'hono';
import { applyRateLimit, type RateLimiter } from '../../admission/rate-limit.js';
import type { AppEnv } from '../../context.js';

export function rateLimit(limiter: RateLimiter): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    applyRateLimit(c, await limiter.hit(c.var.apiKey));
    await next();
  };
}

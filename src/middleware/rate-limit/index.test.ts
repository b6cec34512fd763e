// Against the real test Redis that test/setup/global.ts provides.
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiKeyConfig, hashApiKey } from '../../../lib/config.js';
import { createRedis } from '../../../lib/redis/index.js';
import { redisUrl } from '../../../test/support/queue-env.js';
import { RateLimiter } from '../../admission/rate-limit.js';
import type { AppEnv } from '../../context.js';
import { onError } from '../../problem.js';
import { applyPendingHeaders } from '../../response-headers.js';
import { rateLimit } from './index.js';

const redis = createRedis(redisUrl(), 'client');
afterAll(() => redis.quit());

const key = ApiKeyConfig.parse({
  id: 'k1', key_sha256: hashApiKey('sk-one-0123456789'), webhook_secret: 'whsec_b25lb25lb25lb25lb25lb25lb25l', rate_limit: 2, rate_limit_window_s: 60,
});
const app = new Hono<AppEnv>()
  .onError(onError)
  .use('*', async (c, next) => {
    c.set('apiKey', key);
    c.set('responseHeaders', {});
    await next();
    applyPendingHeaders(c);
  })
  .use('*', rateLimit(new RateLimiter(redis, `rl${randomBytes(4).toString('hex')}`)))
  .get('/', (c) => c.text('ok'));

describe('rate-limit middleware', () => {
  it('sets the RateLimit headers while the budget lasts, then answers 429 with Retry-After', async () => {
    const a = await app.request('/');
    expect(a.status).toBe(200);
    expect(a.headers.get('ratelimit-policy')).toBe('"per-key";q=2;w=60');
    expect(a.headers.get('ratelimit')).toMatch(/^"per-key";r=1;t=\d+$/);
    expect((await app.request('/')).headers.get('ratelimit')).toMatch(/^"per-key";r=0;t=\d+$/);
    const refused = await app.request('/');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { type: string }).type).toBe('/problems/rate-limited');
  });
});

// Builds the gateway from injected dependencies. No state lives in this process between requests (rate
// limits, quotas, idempotency and probe caches are in Redis), so the app can run behind
// @hono/node-server (server.ts) or as a Lambda handler.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { parseAllowlist } from '../lib/net/ssrf.js';
import { redisKeys } from '../lib/queue/index.js';
import type { AppDeps, AppEnv } from './context.js';
import { auth } from './middleware/auth.js';
import { Idempotency } from './middleware/idempotency.js';
import { httpMetrics } from './middleware/metrics.js';
import { notFound, onError, ProblemError } from './middleware/problem.js';
import { rateLimit } from './middleware/rate-limit.js';
import { requestId } from './middleware/request-id.js';
import { docsRoutes } from './routes/docs.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { perceive } from './routes/perceive.js';

/** Largest request body: a base64 image of the maximum size plus room for the task list. */
export function maxRequestBytes(maxImageBytes: number): number {
  return Math.ceil(maxImageBytes / 3) * 4 + 4 * 1024 * 1024;
}

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const gatewayPrefix = `${deps.keyPrefix}:gw`;
  const allowlist = parseAllowlist(deps.config.urlAllowlist);
  const jobKey = redisKeys(deps.keyPrefix).job;

  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.notFound(notFound);
  app.use('*', requestId(deps.log), httpMetrics(deps.registry));
  app.route('/', healthRoutes(deps));
  app.route('/', docsRoutes());

  const v1 = new Hono<AppEnv>();
  v1.use('*', auth(deps.config.apiKeys), rateLimit(deps.redis, gatewayPrefix));
  v1.post(
    '/perceive',
    bodyLimit({
      maxSize: maxRequestBytes(deps.config.limits.maxImageBytes),
      onError: () => {
        throw new ProblemError(413, 'request-too-large', 'Request too large',
          `the request body is larger than ${maxRequestBytes(deps.config.limits.maxImageBytes)} bytes`);
      },
    }),
    perceive({
      ...deps,
      allowlist,
      gatewayPrefix,
      idempotency: new Idempotency(deps.redis, gatewayPrefix),
      quotaKeys: { quota: (keyId) => `${gatewayPrefix}:quota:${keyId}`, jobRecordPrefix: jobKey('') },
    }),
  );
  v1.route('/jobs', jobRoutes(deps));
  app.route('/v1', v1);
  return app;
}

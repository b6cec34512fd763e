// Builds the gateway from injected dependencies. No state lives in this process between requests (rate
// limits, quotas and idempotency keys are in Redis; the image-probe cache only saves work), so the app can
// run behind @hono/node-server (server.ts) or as a Lambda handler, as many copies as needed.
import { Hono } from 'hono';
import { parseAllowlist } from '../lib/net/ssrf.js';
import { redisKeys } from '../lib/queue/index.js';
import type { AppDeps, AppEnv } from './context.js';
import { auth } from './middleware/auth/index.js';
import { Idempotency } from './admission/idempotency.js';
import { Quota } from './admission/quota.js';
import { httpMetrics } from './middleware/http-metrics/index.js';
import { notFound, onError, problemResponse, ProblemError } from './problem.js';
import { RateLimiter } from './admission/rate-limit.js';
import { rateLimit } from './middleware/rate-limit/index.js';
import { requestId } from './middleware/request-id/index.js';
import { docsRoutes } from './routes/docs.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { perceive } from './routes/perceive.js';
import { uploadRoutes } from './routes/uploads.js';
import { ProbeCache } from './intake/s3-ref.js';

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const gatewayPrefix = `${deps.keyPrefix}:gw`;
  const allowlist = parseAllowlist(deps.config.urlAllowlist);
  const jobKey = redisKeys(deps.keyPrefix).job;

  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.use('*', requestId(deps.log), httpMetrics(deps.registry));
  app.route('/', healthRoutes(deps));
  app.route('/', docsRoutes());

  const v1 = new Hono<AppEnv>();
  const limiter = new RateLimiter(deps.redis, gatewayPrefix);
  const limit = rateLimit(limiter);
  v1.use('*', auth(deps.config.apiKeys));
  // POST /perceive counts itself against the rate limit (in its admission script); the rest here.
  v1.use('*', async (c, next) => (c.req.method === 'POST' && c.req.path === '/v1/perceive' ? next() : limit(c, next)));
  v1.post(
    '/perceive',
    perceive({
      ...deps,
      allowlist,
      limiter,
      quota: new Quota(gatewayPrefix, jobKey('')),
      idempotency: new Idempotency(gatewayPrefix),
      probes: new ProbeCache(),
    }),
  );
  v1.route('/uploads', uploadRoutes(deps));
  v1.route('/jobs', jobRoutes(deps));
  app.route('/v1', v1);

  // A path that exists under another method is 405 with Allow (RFC 9110 §15.5.6), not 404. The table is read
  // from the registered routes, so a new route is covered without listing it twice.
  const allowed = allowTable(app);
  app.notFound((c) => {
    const allow = allowed(c.req.path);
    if (!allow) return notFound(c);
    return problemResponse(c, new ProblemError(405, 'method-not-allowed', 'Method not allowed',
      `${c.req.method} is not allowed on ${c.req.path}; use ${allow}`, undefined, { allow }));
  });
  return app;
}

/** For a request path: the methods its routes answer (HEAD with every GET, as Hono serves it), or undefined when
 *  no route has that path. Middleware (`ALL`) does not count. */
export function allowTable(app: Hono<AppEnv>): (path: string) => string | undefined {
  const byPath = new Map<string, Set<string>>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const methods = byPath.get(r.path) ?? new Set<string>();
    methods.add(r.method);
    if (r.method === 'GET') methods.add('HEAD');
    byPath.set(r.path, methods);
  }
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const table = [...byPath].map(([path, methods]) => ({
    // `:name` matches one segment, as Hono's router does; the gateway's routes use no other pattern syntax.
    re: new RegExp(`^${path.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : escape(seg))).join('/')}$`),
    methods,
  }));
  return (path) => {
    const methods = new Set(table.filter((t) => t.re.test(path)).flatMap((t) => [...t.methods]));
    return methods.size ? [...methods].sort().join(', ') : undefined;
  };
}

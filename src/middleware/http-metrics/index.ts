// HTTP request metrics (count and latency by route pattern and status) on the registry /metrics serves.
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { AppEnv } from '../../context.js';

export function httpMetrics(registry: Registry): MiddlewareHandler<AppEnv> {
  // Reuse the metrics when an app is built again on the same registry (tests, warm Lambda re-init).
  const requests = (registry.getSingleMetric('http_requests_total') as Counter<'method' | 'route' | 'status'> | undefined) ?? new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered by the gateway',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = (registry.getSingleMetric('http_request_duration_seconds') as Histogram<'method' | 'route'> | undefined) ?? new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to response headers',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  return async (c, next) => {
    const start = process.hrtime.bigint();
    await next();
    // The matched pattern, not the raw path, so job ids do not explode label cardinality.
    const route = routePath(c, -1);
    requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    latency.observe({ method: c.req.method, route }, Number(process.hrtime.bigint() - start) / 1e9);
  };
}

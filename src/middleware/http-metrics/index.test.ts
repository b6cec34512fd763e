import { Hono } from 'hono';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../../context.js';
import { httpMetrics } from './index.js';

describe('http-metrics middleware', () => {
  it('counts requests by route pattern (not the raw path) and status, and observes their latency', async () => {
    const registry = new Registry();
    const app = new Hono<AppEnv>().use('*', httpMetrics(registry)).get('/jobs/:id', (c) => c.text('ok')).get('/missing', (c) => c.text('no', 404));
    await app.request('/jobs/a');
    await app.request('/jobs/b');
    await app.request('/missing');
    const text = await registry.metrics();
    expect(text).toContain('http_requests_total{method="GET",route="/jobs/:id",status="200"} 2');
    expect(text).toContain('http_requests_total{method="GET",route="/missing",status="404"} 1');
    expect(text).toContain('http_request_duration_seconds_count{method="GET",route="/jobs/:id"} 2');
    expect(text).not.toContain('/jobs/a');
  });

  it('reuses its metrics when a second app is built on the same registry', async () => {
    const registry = new Registry();
    for (let i = 0; i < 2; i++) await new Hono<AppEnv>().use('*', httpMetrics(registry)).get('/', (c) => c.text('ok')).request('/');
    expect(await registry.metrics()).toContain('http_requests_total{method="GET",route="/",status="200"} 2');
  });
});

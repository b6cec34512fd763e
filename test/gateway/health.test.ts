// Liveness, readiness (Redis, storage, a live worker heartbeat), metrics, docs and the OpenAPI route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startHeartbeat } from '../../lib/queue/index.js';
import { S3BlobStore } from '../../lib/storage/index.js';
import { createApp } from '../../src/app.js';
import { openApiYaml } from '../../src/schemas/openapi.js';
import { KEYS, openHarness, png, problemOf, WORDS, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await openHarness();
});
afterAll(() => h.close());

describe('health', () => {
  it('/healthz answers without auth', async () => {
    const res = await h.app.request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz fails its storage check when the bucket is gone (not "object missing")', async () => {
    const gone = new S3BlobStore({ bucket: `gone-${randomBytes(4).toString('hex')}`, region: 'us-east-1', endpoint: process.env.TEST_S3_ENDPOINT, forcePathStyle: true });
    const res = await createApp({ ...h.deps, store: gone }).request('/readyz');
    expect(res.status).toBe(503);
    const body = (await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
    expect(body.checks.storage).toEqual({ ok: false, detail: expect.stringMatching(/bucket gone-\w+ does not exist/) });
    expect(body.checks.redis!.ok).toBe(true);
  });

  it('/readyz is 503 without a live worker and 200 once a worker heartbeat is fresh', async () => {
    const down = await h.app.request('/readyz');
    expect(down.status).toBe(503);
    const body = (await down.json()) as { checks: Record<string, { ok: boolean }> };
    expect(body.checks.redis!.ok).toBe(true);
    expect(body.checks.storage!.ok).toBe(true);
    expect(body.checks.workers!.ok).toBe(false);

    const hb = startHeartbeat(h.deps.redis, h.deps.keyPrefix, {
      worker_id: 'w-test',
      provider: 'cpu',
      model: { name: 'mvp-lm', version: 'test', variant: 'paper' },
    }, 1_000);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const up = await h.app.request('/readyz');
      expect(up.status).toBe(200);
      expect(((await up.json()) as { status: string }).status).toBe('ok');
    } finally {
      await hb.stop();
    }
    expect((await h.app.request('/readyz')).status).toBe(503);
  });

  it('/readyz is 503 when storage does not answer', async () => {
    const { S3BlobStore } = await import('../../lib/storage/index.js');
    const { createApp } = await import('../../src/app.js');
    const app = createApp({ ...h.deps, store: new S3BlobStore({ bucket: h.bucket, region: 'us-east-1', endpoint: 'http://127.0.0.1:1', forcePathStyle: true }) });
    const res = await app.request('/readyz');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { checks: { storage: { ok: boolean } } }).checks.storage.ok).toBe(false);
  });
});

describe('metrics', () => {
  it('counts requests by route pattern and shows queue depth', async () => {
    const res = await h.post({ image: { base64: (await png()).toString('base64') }, tasks: WORDS });
    expect(res.status).toBe(202);
    const text = await (await h.app.request('/metrics')).text();
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/v1\/perceive",status="202"\} 1/);
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/v1\/perceive"\}/);
    expect(text).toMatch(/mvp_queue_jobs\{queue="perception",state="waiting"\} 1/);
    // Job ids do not become label values: the route pattern does.
    const { id } = (await res.json()) as { id: string };
    await h.get(`/v1/jobs/${id}`);
    const after = await (await h.app.request('/metrics')).text();
    expect(after).toMatch(/http_requests_total\{method="GET",route="\/v1\/jobs\/:id",status="200"\} 1/);
    expect(after).not.toContain(id);
  });
});

describe('docs', () => {
  it('/openapi.yaml serves the generated document', async () => {
    const res = await h.app.request('/openapi.yaml');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(openApiYaml());
  });

  it('/docs renders Swagger UI from local assets (no CDN)', async () => {
    const page = await (await h.app.request('/docs')).text();
    expect(page).toContain('/docs/swagger-ui-bundle.js');
    expect(page).not.toMatch(/https?:\/\//);
    for (const asset of ['/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css', '/docs/init.js']) {
      const res = await h.app.request(asset);
      expect(res.status, asset).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(20);
    }
    expect((await h.app.request('/docs/package.json')).status).toBe(404);
  });

  it('unknown routes are problem+json 404s', async () => {
    const res = await h.app.request('/nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});

describe('outages', () => {
  it('answers 503 problem with Retry-After when Redis does not answer', async () => {
    const { loadConfig } = await import('../../lib/config.js');
    const { createLogger } = await import('../../lib/log.js');
    const { loadQueueSettings } = await import('../../lib/queue/index.js');
    const { openGatewayDeps } = await import('../../src/deps.js');
    const { createApp } = await import('../../src/app.js');
    const gw = openGatewayDeps({
      config: loadConfig({ ...process.env, ...{ REDIS_URL: 'redis://127.0.0.1:1', API_KEYS: JSON.stringify(h.config.apiKeys) } }),
      settings: loadQueueSettings({ QUEUE_PREFIX: 'down' }),
      log: createLogger({ level: 'silent' }),
      store: h.store,
      defaultMetrics: false,
    });
    gw.deps.redis.on('error', () => undefined);
    try {
      const app = createApp(gw.deps);
      const res = await app.request('/v1/jobs/abc', { headers: { authorization: `Bearer ${KEYS.alpha}` } });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      expect((await problemOf(res)).type).toBe('/problems/unavailable');
      expect((await app.request('/readyz')).status).toBe(503);
    } finally {
      gw.deps.redis.disconnect();
      await gw.close().catch(() => undefined);
    }
  });
});

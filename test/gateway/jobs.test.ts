// Reading, canceling and waiting for jobs through the API. The worker side of the lifecycle is driven
// with the real job store's own worker methods (markRunning, markSucceeded), as a worker would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESULT_SCHEMA_VERSION, type PerceptionResult } from '../../contracts/result.js';
import { overlayKey, resultKey } from '../../lib/storage/index.js';
import { preferredWaitS } from '../../src/routes/perceive.js';
import { assertMatchesSchema } from './openapi-schemas.js';
import { KEYS, openHarness, png, problemOf, WORDS, type Harness } from './harness.js';

let h: Harness;
let body: unknown;

beforeAll(async () => {
  h = await openHarness();
  body = { image: { base64: (await png()).toString('base64') }, tasks: WORDS };
});
afterAll(() => h.close());

async function submit(key = KEYS.alpha, headers: Record<string, string> = {}): Promise<{ id: string; res: Response }> {
  const res = await h.post(body, { key, headers });
  expect([200, 202]).toContain(res.status);
  const job = (await res.clone().json()) as { id: string };
  return { id: job.id, res };
}

function resultFor(id: string): PerceptionResult {
  return {
    schema_version: RESULT_SCHEMA_VERSION,
    job_id: id,
    model: { name: 'mvp-lm', version: 'test', variant: 'paper' },
    provider: 'cpu',
    image: { width: 64, height: 48 },
    caption: 'a red rectangle',
    tasks: [{ task_index: 0, type: 'words', mode: 'instance', detections: [] }],
    timings_ms: { vision: 3 },
  };
}

async function finish(id: string): Promise<PerceptionResult> {
  const result = resultFor(id);
  await h.store.put(resultKey(id), JSON.stringify(result), 'application/json');
  expect(await h.lifecycle.markRunning(id, 'test-worker')).toBeTruthy();
  await h.lifecycle.markSucceeded(id, { resultKey: resultKey(id), result, timings: { vision: 3 } });
  return result;
}

describe('auth', () => {
  it('401 problem with WWW-Authenticate for a missing or wrong key', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${KEYS.alpha}` }] as Record<string, string>[]) {
      const res = await h.app.request('/v1/perceive', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect((await problemOf(res)).type).toBe('/problems/unauthorized');
    }
    expect((await h.app.request('/v1/jobs/abc')).status).toBe(401);
  });

  it("another key's job is 404 on every job route", async () => {
    const { id } = await submit(KEYS.alpha);
    for (const path of [`/v1/jobs/${id}`, `/v1/jobs/${id}/result`, `/v1/jobs/${id}/overlay.png`]) {
      const res = await h.get(path, KEYS.beta);
      expect(res.status, path).toBe(404);
      expect((await problemOf(res)).type).toBe('/problems/job-not-found');
    }
    const cancel = await h.app.request(`/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.beta}` } });
    expect(cancel.status).toBe(404);
    expect(((await (await h.get(`/v1/jobs/${id}`)).json()) as { status: string }).status).toBe('queued');
  });
});

describe('job routes', () => {
  it('GET /v1/jobs/{id} shows the job with links; unknown ids are 404', async () => {
    const { id } = await submit();
    const res = await h.get(`/v1/jobs/${id}`);
    expect(res.status).toBe(200);
    const job = (await res.json()) as Record<string, unknown>;
    expect(job).toMatchObject({ id, key_id: 'alpha', status: 'queued', urls: { self: `/v1/jobs/${id}`, result: `/v1/jobs/${id}/result` } });
    expect((await h.get('/v1/jobs/00000000-0000-0000-0000-000000000000')).status).toBe(404);
    expect((await h.get('/v1/jobs/..%2F..%2Fetc')).status).toBe(404);
  });

  it('cancel while queued → canceled, and it leaves the queue', async () => {
    const { id } = await submit();
    const res = await h.app.request(`/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.alpha}` } });
    expect(res.status).toBe(200);
    const job = (await res.json()) as { status: string; error: { type: string } };
    assertMatchesSchema('Job', job);
    expect(job.status).toBe('canceled');
    expect(job.error.type).toBe('/problems/job-canceled');
    expect(await h.queue.getJob(id)).toBeFalsy();
  });

  it('result and overlay are 404 problems until they exist, then served from storage', async () => {
    const { id } = await submit();
    expect((await problemOf(await h.get(`/v1/jobs/${id}/result`))).type).toBe('/problems/result-not-available');
    expect((await problemOf(await h.get(`/v1/jobs/${id}/overlay.png`))).type).toBe('/problems/overlay-not-available');
    const result = await finish(id);
    const res = await h.get(`/v1/jobs/${id}/result`);
    expect(res.status).toBe(200);
    const served = await res.json();
    expect(served).toEqual(result);
    assertMatchesSchema('PerceptionResult', served);
    const job = (await (await h.get(`/v1/jobs/${id}`)).json()) as { status: string; result: unknown };
    assertMatchesSchema('Job', job);
    expect(job.status).toBe('succeeded');
    expect(job.result).toEqual(result); // small: inlined
    const overlay = await png(8, 8);
    await h.store.put(overlayKey(id), overlay, 'image/png');
    const o = await h.get(`/v1/jobs/${id}/overlay.png`);
    expect(o.status).toBe(200);
    expect(o.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await o.arrayBuffer())).toEqual(overlay);
  });
});

describe('Prefer: wait', () => {
  it('parses wait=N among other preferences and caps it at 60 s', () => {
    expect(preferredWaitS(undefined)).toBe(0);
    expect(preferredWaitS('respond-async')).toBe(0);
    expect(preferredWaitS('wait=5')).toBe(5);
    expect(preferredWaitS('respond-async, wait="12"')).toBe(12);
    expect(preferredWaitS('wait=3600')).toBe(60);
    expect(preferredWaitS('handling=lenient; wait=7')).toBe(7);
    expect(preferredWaitS('nowait=5')).toBe(0);
  });

  it('caps wait=N at MAX_PREFER_WAIT_S', () => {
    expect(preferredWaitS('wait=45', 29)).toBe(29);
    expect(preferredWaitS('wait=5', 29)).toBe(5);
    expect(preferredWaitS('wait=5', 0)).toBe(0);
  });

  it('holds a response no longer than MAX_PREFER_WAIT_S and says which wait it applied', async () => {
    const capped = await openHarness({ MAX_PREFER_WAIT_S: '1' });
    try {
      const t0 = Date.now();
      const res = await capped.post(body, { headers: { prefer: 'wait=20' } });
      expect(res.status).toBe(202);
      expect(res.headers.get('preference-applied')).toBe('wait=1');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    } finally {
      await capped.close();
    }
  });

  it('answers 202 after the wait when the job is not done', async () => {
    const t0 = Date.now();
    const { res } = await submit(KEYS.alpha, { prefer: 'wait=1' });
    expect(res.status).toBe(202);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(res.headers.get('preference-applied')).toBe('wait=1');
  });

  it('answers 200 with the finished job when it finishes within the wait', async () => {
    const requestId = `wait-${Date.now()}`;
    const pending = h.post(body, { headers: { prefer: 'respond-async, wait=20', 'x-request-id': requestId } });
    // Find the job this request created (by its request id) and finish it as a worker would.
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      await new Promise((r) => setTimeout(r, 50));
      id = (await h.queue.getWaiting()).find((j) => j.data.request_id === requestId)?.id;
    }
    expect(id).toBeTruthy();
    await finish(id!);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get('preference-applied')).toBe('wait=20');
    const job = (await res.json()) as { id: string; status: string };
    expect(job).toMatchObject({ id, status: 'succeeded' });
  });
});

describe('uploads', () => {
  it('POST /v1/uploads is mounted behind auth and issues a reference /v1/perceive accepts once the PUT is done', async () => {
    const image = await png(20, 20);
    const res = await h.app.request('/v1/uploads', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.alpha}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content_type: 'image/png', size_bytes: image.length }),
    });
    expect(res.status).toBe(201);
    const up = (await res.json()) as { url: string; headers: Record<string, string>; s3: string };
    const put = await fetch(up.url, { method: 'PUT', headers: up.headers, body: new Uint8Array(image) });
    expect(put.status).toBe(200);
    const job = await h.post({ image: { s3: up.s3 }, tasks: WORDS });
    expect(job.status).toBe(202);
    const other = await h.post({ image: { s3: up.s3 }, tasks: WORDS }, { key: KEYS.beta });
    expect(other.status).toBe(422);
    expect((await problemOf(other)).type).toBe('/problems/s3-ref-refused');
    expect((await h.app.request('/v1/uploads', { method: 'POST' })).status).toBe(401);
  });
});

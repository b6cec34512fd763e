// Per-key rate limit and concurrent-job quota, both kept in Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, openHarness, png, problemOf, WORDS, type Harness } from './harness.js';

let h: Harness;
let body: unknown;

beforeAll(async () => {
  h = await openHarness();
  body = { image: { base64: (await png()).toString('base64') }, tasks: WORDS };
});
afterAll(() => h.close());

describe('rate limit', () => {
  it('counts requests per key and answers 429 with Retry-After and RateLimit headers', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await h.get('/v1/jobs/none', KEYS.tight);
      statuses.push(last.status);
      if (i === 0) {
        expect(last.headers.get('ratelimit-policy')).toBe('"per-key";q=3;w=60');
        expect(last.headers.get('ratelimit')).toMatch(/^"per-key";r=2;t=\d+$/);
      }
    }
    expect(statuses).toEqual([404, 404, 404, 429]);
    const retryAfter = Number(last!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(last!.headers.get('ratelimit')).toMatch(/^"per-key";r=0;t=\d+$/);
    expect((await problemOf(last!)).type).toBe('/problems/rate-limited');
    // Other keys are not affected.
    expect((await h.get('/v1/jobs/none', KEYS.alpha)).status).toBe(404);
  });

  it('counts POST /v1/perceive too, invalid bodies included, and a refused submit creates no job', async () => {
    const fresh = await openHarness();
    try {
      const ok = await fresh.post(body, { key: KEYS.tight });
      expect(ok.status).toBe(202);
      expect(ok.headers.get('ratelimit')).toMatch(/^"per-key";r=2;t=\d+$/);
      expect((await fresh.post({ tasks: 'nope' }, { key: KEYS.tight })).status).toBe(422);
      expect((await fresh.post(body, { key: KEYS.tight })).status).toBe(202);
      const refused = await fresh.post(body, { key: KEYS.tight });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await fresh.post({ tasks: 'nope' }, { key: KEYS.tight })).status).toBe(429);
      expect((await fresh.queue.getJobCounts('waiting')).waiting).toBe(2);
      // The refused submit holds no job slot either: the quota counts the two accepted jobs only.
      expect(await fresh.deps.redis.zcard(`${fresh.deps.keyPrefix}:gw:quota:tight`)).toBe(2);
    } finally {
      await fresh.close();
    }
  });
});

describe('response headers', () => {
  it('the request id and the RateLimit headers reach every kind of answer: accepted, refused, another route, no route', async () => {
    const ok = await h.post(body, { headers: { 'x-request-id': 'hdr-1' } });
    const invalid = await h.post({ tasks: 'nope' }, { headers: { 'x-request-id': 'hdr-2' } });
    const other = await h.app.request('/v1/jobs/none', { headers: { authorization: `Bearer ${KEYS.alpha}`, 'x-request-id': 'hdr-3' } });
    const none = await h.app.request('/nowhere', { headers: { 'x-request-id': 'hdr-4' } });
    expect([ok.status, invalid.status, other.status, none.status]).toEqual([202, 422, 404, 404]);
    expect([ok, invalid, other, none].map((r) => r.headers.get('x-request-id'))).toEqual(['hdr-1', 'hdr-2', 'hdr-3', 'hdr-4']);
    for (const r of [ok, invalid, other]) {
      expect(r.headers.get('ratelimit-policy')).toBe('"per-key";q=1000000;w=60');
      expect(r.headers.get('ratelimit')).toMatch(/^"per-key";r=\d+;t=\d+$/);
    }
    expect(ok.headers.get('content-type')).toBe('application/json');
    expect(ok.headers.get('location')).toMatch(/^\/v1\/jobs\/[0-9a-f-]{36}$/);
    expect(invalid.headers.get('content-type')).toBe('application/problem+json');
  });
});

describe('concurrent-job quota', () => {
  it('refuses a third unfinished job for a key allowed two, and frees the slot when one finishes', async () => {
    const a = await h.post(body, { key: KEYS.few });
    const b = await h.post(body, { key: KEYS.few });
    expect([a.status, b.status]).toEqual([202, 202]);
    const c = await h.post(body, { key: KEYS.few });
    expect(c.status).toBe(429);
    expect(c.headers.get('retry-after')).toBe('1');
    expect((await problemOf(c)).type).toBe('/problems/job-quota-exceeded');
    const { id } = (await a.json()) as { id: string };
    const cancel = await h.app.request(`/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.few}` } });
    expect(cancel.status).toBe(200);
    expect((await h.post(body, { key: KEYS.few })).status).toBe(202);
  });

  it('does not overshoot under concurrent submits', async () => {
    const fresh = await openHarness();
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => fresh.post(body, { key: KEYS.few })));
      expect(results.map((r) => r.status).sort()).toEqual([202, 202, 429, 429, 429, 429, 429, 429]);
      expect(results.filter((r) => r.status === 429)).toHaveLength(6);
      // A refused submit leaves neither a queue entry nor a job record: creation is part of the admission.
      expect((await fresh.queue.getJobCounts('waiting')).waiting).toBe(2);
      expect(await fresh.deps.redis.keys(`${fresh.deps.keyPrefix}:job:*`)).toHaveLength(2);
    } finally {
      await fresh.close();
    }
  });
});

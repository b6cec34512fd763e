import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../lib/log.js';
import type { AppEnv } from '../../context.js';
import { requestId } from './index.js';

const app = new Hono<AppEnv>().use('*', requestId(createLogger({ level: 'silent' }))).get('/', (c) => c.text(c.var.requestId));

describe('request-id middleware', () => {
  it("echoes a sane X-Request-Id and hands it to the route", async () => {
    const res = await app.request('/', { headers: { 'x-request-id': 'abc-123.x:y' } });
    expect(res.headers.get('x-request-id')).toBe('abc-123.x:y');
    expect(await res.text()).toBe('abc-123.x:y');
  });

  it('sets X-Content-Type-Options: nosniff on the response, errors included', async () => {
    const failing = new Hono<AppEnv>().use('*', requestId(createLogger({ level: 'silent' }))).get('/', () => {
      throw new Error('boom');
    });
    failing.onError((_e, c) => c.json({ error: true }, 500));
    for (const res of [await app.request('/'), await app.request('/missing'), await failing.request('/')]) {
      expect(res.headers.get('x-content-type-options'), String(res.status)).toBe('nosniff');
    }
  });

  it('replaces a missing or unsafe one with a new UUID', async () => {
    for (const given of [undefined, 'has space', 'x'.repeat(129), 'semi;colon']) {
      const res = await app.request('/', { headers: given ? { 'x-request-id': given } : {} });
      const id = res.headers.get('x-request-id');
      expect(id, given).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(await res.text()).toBe(id);
    }
  });
});

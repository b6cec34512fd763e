import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { ApiKeyConfig, hashApiKey } from '../../../lib/config.js';
import type { AppEnv } from '../../context.js';
import { onError } from '../../problem.js';
import { auth } from './index.js';

const key = ApiKeyConfig.parse({ id: 'k1', key_sha256: hashApiKey('sk-one-0123456789'), webhook_secret: 'whsec_b25lb25lb25lb25lb25lb25lb25l' });
const app = new Hono<AppEnv>().onError(onError).use('*', auth([key])).get('/', (c) => c.text(c.var.apiKey.id));

describe('auth middleware', () => {
  it('passes a configured Bearer key on, as apiKey', async () => {
    const res = await app.request('/', { headers: { authorization: 'Bearer sk-one-0123456789' } });
    expect([res.status, await res.text()]).toEqual([200, 'k1']);
  });

  it('answers 401 problem+json with WWW-Authenticate for a missing, malformed or unknown key', async () => {
    for (const authorization of [undefined, 'sk-one-0123456789', 'Basic sk-one-0123456789', 'Bearer sk-two-0123456789']) {
      const res = await app.request('/', { headers: authorization ? { authorization } : {} });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { type: string }).type).toBe('/problems/unauthorized');
    }
  });
});

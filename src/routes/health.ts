// /healthz: the process answers. /readyz: Redis answers, storage answers, and at least one worker with a
// loaded model has a fresh heartbeat (lib/queue/heartbeat.ts). /metrics: the Prometheus registry.
import { Hono } from 'hono';
import { listLiveWorkers } from '../../lib/queue/index.js';
import type { AppDeps, AppEnv } from '../context.js';

type Check = { ok: boolean; detail?: string };

async function check(fn: () => Promise<string | undefined>): Promise<Check> {
  try {
    const detail = await fn();
    return detail === undefined ? { ok: true } : { ok: true, detail };
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
}

export function healthRoutes({ redis, store, registry, keyPrefix }: AppDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.get('/healthz', (c) => c.json({ status: 'ok' }));
  r.get('/readyz', async (c) => {
    const [redisCheck, storage, workers] = await Promise.all([
      check(async () => {
        await redis.ping();
        return undefined;
      }),
      // The bucket (or directory) exists and answers with these credentials; a lost bucket is not ready.
      check(async () => {
        await store.ready();
        return undefined;
      }),
      check(async () => {
        const live = await listLiveWorkers(redis, keyPrefix);
        if (live.length === 0) throw new Error('no live worker with a loaded model');
        return `${live.length} live (${[...new Set(live.map((w) => w.provider))].join(', ')})`;
      }),
    ]);
    const checks = { redis: redisCheck, storage, workers };
    const ok = Object.values(checks).every((x) => x.ok);
    return c.json({ status: ok ? 'ok' : 'unavailable', checks }, ok ? 200 : 503);
  });
  r.get('/metrics', async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  return r;
}

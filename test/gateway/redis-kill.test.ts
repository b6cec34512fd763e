// Redis killed, not shut down (kill -9), under a stream of submits, with the AOF fsynced every second as in
// production: Redis writes a command to the AOF file before it replies, so every job the gateway answered 202
// for survives the process dying (only a machine crash or power loss can drop the last second: docs/deploy.md),
// and no job is half-made (its record and its queue entry are one script, one AOF entry).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { PrivateRedis } from '../support/processes.js';
import { until } from '../support/wait.js';
import { openHarness, png, WORDS, type Harness } from './harness.js';

let redis: PrivateRedis;
let h: Harness;
let image: string;

beforeAll(async () => {
  redis = await PrivateRedis.start('everysec');
  h = await openHarness({ REDIS_URL: redis.url });
  image = (await png()).toString('base64');
});
afterAll(async () => {
  await h.close();
  await redis.kill();
});

describe('gateway when Redis is killed under load', () => {
  it('loses no accepted job and leaves no half-made one', async () => {
    const accepted: string[] = [];
    let refused = 0;
    let stop = false;
    const client = async (): Promise<void> => {
      while (!stop) {
        const res = await h.post({ image: { base64: image }, tasks: WORDS });
        if (res.status === 202) accepted.push(((await res.json()) as { id: string }).id);
        else refused++;
      }
    };
    const clients = Array.from({ length: 6 }, client);
    await until('some accepted jobs', async () => accepted.length >= 60 || null, 30_000);
    await redis.kill();
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(clients);
    await redis.restart();

    expect(refused).toBeGreaterThan(0); // the kill really happened while requests were in flight
    const r = new Redis(redis.url);
    try {
      const prefix = h.deps.keyPrefix;
      const records = (await r.keys(`${prefix}:job:*`)).filter((k) => !k.endsWith(':webhook-attempts')).map((k) => k.slice(`${prefix}:job:`.length));
      // Every 202 survived. (A request whose reply was lost with the process may exist without a 202: a client
      // retrying it with its Idempotency-Key gets that job.)
      expect(accepted.filter((id) => !records.includes(id))).toEqual([]);
      // And every job that exists is whole: its record has its queue entry.
      for (const id of records) expect([id, await r.exists(`${prefix}:perception:${id}`)]).toEqual([id, 1]);
    } finally {
      r.disconnect();
    }
  });
});

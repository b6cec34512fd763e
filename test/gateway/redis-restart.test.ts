// The gateway's own Redis connection (coalesceWrites: a corked socket per event-loop turn) across a Redis
// outage: submits during the outage are refused with 503 problem+json, none is half-accepted, and once Redis
// is back the same gateway accepts jobs again without a restart and every accepted job is in the queue.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivateRedis } from '../support/processes.js';
import { until } from '../support/wait.js';
import { openHarness, png, problemOf, WORDS, type Harness } from './harness.js';

let redis: PrivateRedis;
let h: Harness;
let image: string;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  h = await openHarness({ REDIS_URL: redis.url });
  image = (await png()).toString('base64');
});
afterAll(async () => {
  await h.close();
  await redis.kill();
});

const accepted: string[] = []; // ids of every 202
async function submit(): Promise<Response> {
  const res = await h.post({ image: { base64: image }, tasks: WORDS });
  if (res.status === 202) accepted.push(((await res.clone().json()) as { id: string }).id);
  return res;
}

describe('gateway across a Redis restart', () => {
  it('answers 503 while Redis is down and accepts jobs on the same connection once it is back', async () => {
    const before = await Promise.all([submit(), submit(), submit()]);
    expect(before.map((r) => r.status)).toEqual([202, 202, 202]);

    await redis.kill();
    const during = await Promise.all([submit(), submit()]);
    for (const res of during) {
      expect(res.status).toBe(503);
      expect((await problemOf(res)).type).toMatch(/unavailable/);
    }

    await redis.restart();
    await until('the gateway accepts again', async () => (await submit()).status === 202);
    const after = await Promise.all([submit(), submit()]);
    expect(after.map((r) => r.status)).toEqual([202, 202]);

    // every 202 is a queued job, and nothing refused during the outage reached the queue
    expect(accepted.length).toBeGreaterThanOrEqual(6);
    for (const id of accepted) expect((await h.queue.getJob(id))?.id).toBe(id);
    const counts = await h.queue.getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(accepted.length);
  });
});

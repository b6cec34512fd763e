// Perception worker processes on the real ONNX pipeline (tiny exported bundle, CPU): jobs complete with
// schema-valid results, and with a lock far shorter than a job no job is ever taken for stalled by the
// second worker — inference runs in the pipeline's worker thread, so BullMQ keeps renewing the lock on the
// main event loop (crash-recovery.test.ts shows the same setup does catch a pipeline that blocks the loop).
// A running job is also canceled between real stages, and jobs that arrive together run in shared batches
// (BATCH_MAX), reported in their timings and in the batch histograms.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PerceptionResult } from '../../contracts/result.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { overlayKey, resultKey, type S3BlobStore } from '../../lib/storage/index.js';
import { ensureBundle } from '../pipeline/bundles.js';
import { submit } from '../support/payloads.js';
import { spawnTs, stopChild, waitForWorker } from '../support/processes.js';
import { openQueueEnv, redisUrl, testQueueEnv, type QueueEnv } from '../support/queue-env.js';
import { openTestBucket, s3Env, testImage } from '../support/s3.js';
import { until } from '../support/wait.js';

let q: QueueEnv;
let s3: S3BlobStore;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  // The lock (600 ms) is shorter than one job (~1 s on this CPU), and the stalled check runs every 300 ms.
  q = openQueueEnv({ env: { ...testQueueEnv(), WORKER_LOCK_MS: '600', WORKER_STALLED_INTERVAL_MS: '300' } });
  s3 = await openTestBucket();
  const env = { ...q.env, ...s3Env(s3.bucket), REDIS_URL: redisUrl(), MODEL_DIR: ensureBundle('paper'), BATCH_MAX: '4', BATCH_WAIT_MS: '150' };
  for (let i = 0; i < 2; i++) workers.push(spawnTs('workers/perception/main.ts', env));
  for (const w of workers) await waitForWorker(q.redis, q.settings.prefix, w, 120_000);
}, 900_000);
afterAll(async () => {
  await Promise.all(workers.map((w) => stopChild(w)));
  await q.close();
});

describe('perception worker on the ONNX pipeline', () => {
  it('completes jobs once each, with valid results, while the lock is shorter than inference', async () => {
    const jobs = [];
    for (let i = 0; i < 3; i++) {
      jobs.push(await submit(q, s3, await testImage(40 * i, 96, 64), {
        phrases: ['person', 'dog'],
      }));
    }
    for (const p of jobs) {
      const v = await q.jobs.waitForTerminal(p.job_id, 60_000);
      expect(v).toMatchObject({ status: 'succeeded', attempts: 1, provider: 'cpu', model: { name: 'mvp-lm-tiny-paper' } });
      const stored = PerceptionResult.parse(JSON.parse((await s3.get(resultKey(p.job_id)))!.toString()));
      expect(stored.image).toEqual({ width: 96, height: 64 });
      expect(stored.job_id).toBe(p.job_id);
      expect((await until('the overlay', () => s3.head(overlayKey(p.job_id)))).contentType).toBe('image/png');
    }
    expect((await q.queues.perception.getJobCounts('failed')).failed ?? 0).toBe(0);
  });

  it('runs jobs that arrive together in shared batches, still never taken for stalled', async () => {
    const jobs = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => submit(q, s3, await testImage(300 + i, 96 + 8 * i, 64), { phrases: ['person', 'dog'] })),
    );
    const results: PerceptionResult[] = [];
    for (const p of jobs) {
      expect(await q.jobs.waitForTerminal(p.job_id, 60_000)).toMatchObject({ status: 'succeeded', attempts: 1 });
      results.push(PerceptionResult.parse(JSON.parse((await s3.get(resultKey(p.job_id)))!.toString())));
    }
    // 8 jobs on 2 workers of 4 each: jobs shared vision batches, and each result says how big its batch was
    expect(Math.max(...results.map((r) => r.timings_ms.vision_batch ?? 0))).toBeGreaterThan(1);
    expect(results.every((r) => (r.timings_ms.vision_batch ?? 0) >= 1 && (r.timings_ms.vision_batch ?? 0) <= 4)).toBe(true);
    const registry = createMetricsRegistry({ redis: q.redis, prefix: q.settings.prefix, queues: [q.queues.perception], defaultMetrics: false });
    const text = await registry.metrics();
    const count = (stage: string) => Number(new RegExp(`mvp_batch_size_count\\{stage="${stage}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    const sum = Number(/mvp_batch_size_sum\{stage="vision"\} (\d+)/.exec(text)?.[1] ?? 0);
    // each job so far (3 above, 8 here; the warm-up bypasses the batcher) counted once in the vision batch sizes
    expect(sum).toBe(11);
    expect(count('vision')).toBeLessThan(11);
    expect(count('language')).toBeGreaterThan(0);
    expect(text).toMatch(/mvp_batch_wait_seconds_count\{stage="perception"\} \d+/);
    expect((await q.queues.perception.getJobCounts('failed')).failed ?? 0).toBe(0);
  });

  it('cancels a running job between real stages', async () => {
    const p = await submit(q, s3, await testImage(200, 96, 64), { phrases: ['person'] });
    await until('the job to start', async () => (await q.jobs.get(p.job_id))?.status === 'running', 30_000);
    await q.jobs.cancel(p.job_id);
    const v = await q.jobs.waitForTerminal(p.job_id, 60_000);
    expect(v?.status).toBe('canceled');
    expect(v?.error?.type).toBe('/problems/job-canceled');
    expect(await s3.head(resultKey(p.job_id))).toBeNull();
  });
});

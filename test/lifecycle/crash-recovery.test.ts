// Real worker processes: a worker SIGKILLed mid-job is recovered by another worker through BullMQ's
// stalled-job check and the job completes once from the user's view (or, past the stall limit, ends failed
// rather than running forever); a Redis SIGKILLed and restarted under
// a running queue loses no accepted job and the worker resumes consuming. A control case shows that a
// pipeline blocking the main thread does lose its lock (what onnx-worker.test.ts must not see).
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PerceptionResult } from '../../contracts/result.js';
import { redisKeys } from '../../lib/queue/index.js';
import { resultKey, type S3BlobStore } from '../../lib/storage/index.js';
import { submit } from '../support/payloads.js';
import { PrivateRedis, spawnTs, stopChild, TEST_PIPELINE, waitForWorker } from '../support/processes.js';
import { openQueueEnv, redisUrl, testQueueEnv, type QueueEnv } from '../support/queue-env.js';
import { openTestBucket, s3Env, testImage } from '../support/s3.js';
import { until } from '../support/wait.js';

const WORKER = 'workers/perception/main.ts';
let s3: S3BlobStore;
let image: Buffer;
const children: ChildProcess[] = [];

function startWorker(q: QueueEnv, url: string): ChildProcess {
  const child = spawnTs(WORKER, { ...q.env, ...s3Env(s3.bucket), REDIS_URL: url, PIPELINE_MODULE: TEST_PIPELINE });
  children.push(child);
  return child;
}

beforeAll(async () => {
  s3 = await openTestBucket();
  image = await testImage(3);
});
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => stopChild(c, 'SIGKILL')));
});

describe('worker crash', () => {
  let q: QueueEnv;
  beforeAll(() => {
    q = openQueueEnv();
  });
  afterAll(async () => {
    await q.close();
  });

  it('a job whose worker is SIGKILLed mid-job is finished by another worker, once', async () => {
    const keys = redisKeys(q.settings.prefix);
    const terminalPublishes: string[] = [];
    const sub = new Redis(redisUrl());
    sub.on('message', (_c, id: string) => terminalPublishes.push(id));
    await sub.subscribe(keys.terminalChannel);

    const a = startWorker(q, redisUrl());
    await waitForWorker(q.redis, q.settings.prefix, a);
    const p = await submit(q, s3, image, {
      phrases: ['test:slow=300'],
      webhook: { url: 'https://example.com/hook', events: ['job.started', 'job.succeeded'] },
    });
    await until('job running on worker A', async () => (await q.jobs.get(p.job_id))?.stage === 'vision');
    await stopChild(a, 'SIGKILL');
    // Within three heartbeats the view stops claiming the job runs.
    const killedAt = Date.now();
    const lost = await until('the job to read retrying', async () => {
      const x = await q.jobs.get(p.job_id);
      return x?.status === 'retrying' ? x : null;
    });
    expect(lost.retry?.reason).toBe('worker-lost');
    expect(Date.now() - killedAt).toBeLessThan(3 * q.settings.heartbeatMs + 1_000);

    const b = startWorker(q, redisUrl());
    await waitForWorker(q.redis, q.settings.prefix, b);
    const v = await q.jobs.waitForTerminal(p.job_id, 30_000);
    expect(v).toMatchObject({ status: 'succeeded', attempts: 2, error: null });
    expect(PerceptionResult.parse(JSON.parse((await s3.get(resultKey(p.job_id)))!.toString()))).toEqual(v!.result);

    // Once from the user's view: one terminal transition, one outcome counted, one event of each kind queued.
    await new Promise((r) => setTimeout(r, 300));
    expect(terminalPublishes.filter((id) => id === p.job_id)).toHaveLength(1);
    expect(await q.redis.hget(keys.metricJobOutcomes, 'succeeded')).toBe('1');
    const deliveries = await q.queues.webhooks.getJobs(['waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed']);
    expect(deliveries.map((d) => d.id).sort()).toEqual([`msg_${p.job_id}_job_started`, `msg_${p.job_id}_job_succeeded`]);
    sub.disconnect();
  });
});

describe('worker crash beyond the stall limit', () => {
  let q: QueueEnv;
  beforeAll(() => {
    q = openQueueEnv({ env: { ...testQueueEnv(), WORKER_MAX_STALLED: '0' } });
  });
  afterAll(async () => {
    await q.close();
  });

  it('a job that stalls more often than allowed ends failed with a problem, not running forever', async () => {
    const a = startWorker(q, redisUrl());
    await waitForWorker(q.redis, q.settings.prefix, a);
    const p = await submit(q, s3, image, { phrases: ['test:slow=300'] });
    await until('job running on worker A', async () => (await q.jobs.get(p.job_id))?.stage === 'vision');
    await stopChild(a, 'SIGKILL');
    const b = startWorker(q, redisUrl());
    await waitForWorker(q.redis, q.settings.prefix, b);
    const v = await q.jobs.waitForTerminal(p.job_id, 30_000);
    expect(v).toMatchObject({ status: 'failed', attempts: 1, error: { type: '/problems/processing-failed', status: 500 } });
    expect(v?.error?.detail).toMatch(/stopped responding too many times/);
  });
});

describe('blocked event loop (control for onnx-worker.test.ts)', () => {
  let q: QueueEnv;
  beforeAll(() => {
    q = openQueueEnv({ env: { ...testQueueEnv(), WORKER_LOCK_MS: '600', WORKER_STALLED_INTERVAL_MS: '300' } });
  });
  afterAll(async () => {
    await q.close();
  });

  it('a pipeline that blocks the main thread longer than the lock loses its job to the other worker', async () => {
    const a = startWorker(q, redisUrl());
    const b = startWorker(q, redisUrl());
    await waitForWorker(q.redis, q.settings.prefix, a);
    await waitForWorker(q.redis, q.settings.prefix, b);
    const p = await submit(q, s3, image, { phrases: ['test:block=2500'] });
    const v = await q.jobs.waitForTerminal(p.job_id, 30_000);
    // Still one success from the user's view, but it ran more than once: this is what the ONNX test rules out.
    expect(v?.status).toBe('succeeded');
    expect(v?.attempts).toBeGreaterThanOrEqual(2);
  });
});

describe('Redis restart', () => {
  let redis: PrivateRedis;
  let q: QueueEnv;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    q = openQueueEnv({ url: redis.url, env: testQueueEnv() });
  });
  afterAll(async () => {
    await q.close();
    await redis.kill();
  });

  it('loses no accepted job when Redis is killed and restarted, and the worker resumes', async () => {
    const w = startWorker(q, redis.url);
    await waitForWorker(q.redis, q.settings.prefix, w);
    const accepted = [];
    for (let i = 0; i < 12; i++) accepted.push(await submit(q, s3, image, { phrases: ['test:slow=40', `p${i}`] }));
    await until('a few jobs done', async () => ((await q.queues.perception.getJobCounts('completed')).completed ?? 0) >= 3);

    await redis.kill();
    await new Promise((r) => setTimeout(r, 500));
    await redis.restart();

    const after = await submit(q, s3, image, { phrases: ['after-restart'] });
    for (const p of [...accepted, after]) {
      const v = await q.jobs.waitForTerminal(p.job_id, 30_000);
      expect({ id: p.job_id, status: v?.status }).toEqual({ id: p.job_id, status: 'succeeded' });
    }
  });
});

// The worker entry points as real processes, wired from the environment as in production: a perception
// worker and a webhook worker deliver a signed webhook for a finished job; SIGTERM lets the running job
// finish before the worker exits; /metrics data (queue depth, stage durations, outcomes) comes out of Redis.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../lib/config.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import type { JobView } from '../../contracts/job-view.js';
import { listLiveWorkers } from '../../lib/queue/index.js';
import type { S3BlobStore } from '../../lib/storage/index.js';
import { submit } from '../support/payloads.js';
import { spawnTs, stopChild, TEST_PIPELINE, waitForWorker } from '../support/processes.js';
import { openQueueEnv, redisUrl, type QueueEnv } from '../support/queue-env.js';
import { openTestBucket, s3Env, testImage } from '../support/s3.js';
import { until } from '../support/wait.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const secret = `whsec_${randomBytes(24).toString('base64')}`;
let q: QueueEnv;
let s3: S3BlobStore;
let image: Buffer;
let receiver: WebhookReceiver;
let env: Record<string, string>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  q = openQueueEnv();
  s3 = await openTestBucket();
  image = await testImage(11);
  receiver = new WebhookReceiver();
  await receiver.listen();
  env = {
    ...q.env,
    ...s3Env(s3.bucket),
    REDIS_URL: redisUrl(),
    PIPELINE_MODULE: TEST_PIPELINE,
    URL_ALLOWLIST: '127.0.0.1',
    WEBHOOK_TIMEOUT_MS: '2000',
    API_KEYS: JSON.stringify([{ id: 'test-key', key_sha256: hashApiKey('not-used-here'), webhook_secret: secret }]),
  };
});
afterAll(async () => {
  await Promise.all(children.map((c) => stopChild(c, 'SIGKILL')));
  await receiver.close();
  await q.close();
});

describe('worker processes', () => {
  it('run a job and deliver its signed webhooks, retrying a failing receiver', async () => {
    const perception = spawnTs('workers/perception/main.ts', env);
    const webhooks = spawnTs('workers/webhooks/main.ts', env);
    children.push(perception, webhooks);
    await waitForWorker(q.redis, q.settings.prefix, perception);
    const [hb] = await listLiveWorkers(q.redis, q.settings.prefix);
    expect(hb).toMatchObject({ provider: 'cpu', model: { name: 'test-pipeline' } });

    const url = receiver.script('/hook', [{ status: 503 }, { status: 200 }]);
    const p = await submit(q, s3, image, { webhook: { url, events: ['job.started', 'job.succeeded'] } });
    expect((await q.jobs.waitForTerminal(p.job_id, 30_000))?.status).toBe('succeeded');
    const view = await until('both events delivered', async () => {
      const v = await q.jobs.get(p.job_id);
      return (v?.webhook?.attempts.filter((a) => a.outcome === 'delivered').length ?? 0) === 2 ? v : null;
    });
    expect(view.webhook!.attempts.length).toBeGreaterThanOrEqual(3);
    const verifier = new Webhook(secret);
    const bodies = receiver.on('/hook').map((r) => verifier.verify(r.body, r.headers as Record<string, string>) as { type: string; data: JobView });
    expect(new Set(bodies.map((b) => b.type))).toEqual(new Set(['job.started', 'job.succeeded']));
    expect(bodies.find((b) => b.type === 'job.succeeded')!.data.result?.job_id).toBe(p.job_id);
  });

  it('report queue depth, stage durations and outcomes through the metrics registry', async () => {
    const registry = createMetricsRegistry({
      redis: q.redis,
      prefix: q.settings.prefix,
      queues: [q.queues.perception, q.queues.webhooks],
      defaultMetrics: false,
    });
    // The BullMQ entry completes after the overlay is rendered, a little after the job record succeeded.
    await until('the BullMQ entry to complete', async () => ((await q.queues.perception.getJobCounts('completed')).completed ?? 0) === 1);
    const text = await registry.metrics();
    expect(text).toMatch(/mvp_queue_jobs\{queue="perception",state="waiting"\} 0/);
    expect(text).toMatch(/mvp_queue_jobs\{queue="perception",state="completed"\} 1/);
    expect(text).toMatch(/mvp_job_stage_duration_seconds_count\{stage="vision"\} 1/);
    expect(text).toMatch(/mvp_job_stage_duration_seconds_bucket\{stage="store",le="\+Inf"\} 1/);
    expect(text).toMatch(/mvp_jobs_finished_total\{status="succeeded"\} 1/);
    expect(text).toMatch(/mvp_webhook_deliveries_total\{outcome="delivered"\} 2/);
    expect(text).toMatch(/mvp_webhook_deliveries_total\{outcome="failed"\} 1/);
    expect(text).toMatch(/mvp_live_workers 1/);
  });

  it('SIGTERM lets the running job finish, then the worker exits cleanly', async () => {
    const perception = children[0]!;
    const p = await submit(q, s3, image, { phrases: ['test:slow=200'] });
    await until('the job to run', async () => (await q.jobs.get(p.job_id))?.status === 'running');
    const exited = new Promise<number | null>((r) => perception.once('exit', (code) => r(code)));
    perception.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect((await q.jobs.get(p.job_id))?.status).toBe('succeeded');
    expect(await listLiveWorkers(q.redis, q.settings.prefix)).toEqual([]);
  });
});

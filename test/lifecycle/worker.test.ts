// The perception consumer in-process against real Redis and the real S3-protocol server, with the
// deterministic test pipeline: success (result and overlay), cancel (queued, running), deadlines, bad input, unknown payload
// versions, retry after a transient storage failure, and exhausted retries.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PerceptionResult } from '../../contracts/result.js';
import { createLogger } from '../../lib/log.js';
import sharp from 'sharp';
import { overlayKey, resultKey, S3BlobStore, type BlobStore } from '../../lib/storage/index.js';
import { startPerceptionWorker, type PerceptionWorker } from '../../workers/perception/worker.js';
import type { JobOutcome } from '../../workers/perception/processor.js';
import { FlakyBlobStore } from '../support/flaky-blob-store.js';
import { submit } from '../support/payloads.js';
import { openQueueEnv, type QueueEnv } from '../support/queue-env.js';
import { openTestBucket, testImage } from '../support/s3.js';
import { createPipeline } from '../support/test-pipeline.js';
import { until } from '../support/wait.js';

const log = createLogger({ level: 'silent' });
let q: QueueEnv;
let s3: S3BlobStore;
let image: Buffer;
let running: PerceptionWorker | null = null;
const outcomes = new Map<string, JobOutcome>();

async function startWorker(blobs: BlobStore = s3): Promise<PerceptionWorker> {
  running = await startPerceptionWorker({ redis: q.redis, settings: q.settings, lifecycle: q.lifecycle, blobs, pipeline: await createPipeline(), log });
  running.worker.on('completed', (job, outcome) => outcomes.set(String(job.id), outcome));
  return running;
}

/** The BullMQ entry once BullMQ has failed it (the record is marked failed first, then the error is thrown). */
function failedEntry(id: string) {
  return until(`BullMQ to fail ${id}`, async () =>
    (await q.queues.perception.getJobState(id)) === 'failed' ? q.queues.perception.getJob(id) : null,
  );
}

beforeAll(async () => {
  q = openQueueEnv();
  s3 = await openTestBucket();
  image = await testImage(7);
});
afterEach(async () => {
  await running?.close();
  running = null;
});
afterAll(async () => {
  await q.close();
});

describe('perception worker', () => {
  it('runs a job through every stage, writes the result to storage and inlines it', async () => {
    await startWorker();
    const p = await submit(q, s3, image, { phrases: ['person', 'frisbee'] });
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v?.status).toBe('succeeded');
    expect(v).toMatchObject({ stage: 'store', progress: 1, attempts: 1, result_key: resultKey(p.job_id), provider: 'cpu' });
    expect(Object.keys(v!.timings_ms).sort()).toEqual(['fetch', 'language', 'perception', 'postprocess', 'preprocess', 'store', 'vision']);
    const stored = PerceptionResult.parse(JSON.parse((await s3.get(resultKey(p.job_id)))!.toString()));
    expect(stored).toEqual(v!.result);
    expect(stored.image).toEqual({ width: 64, height: 48 });
    expect(stored.tasks[0]!.detections.map((d) => d.phrase)).toEqual(['person', 'frisbee']);
    expect(Date.parse(v!.started_at!)).toBeLessThanOrEqual(Date.parse(v!.finished_at!));
    // The overlay follows the success (rendered in the worker's overlay thread).
    const png = await until('the overlay', () => s3.get(overlayKey(p.job_id)));
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 64, height: 48 });
  });

  it('never runs a job canceled while queued', async () => {
    const p = await submit(q, s3, image);
    expect((await q.jobs.cancel(p.job_id))?.status).toBe('canceled');
    await startWorker();
    const other = await submit(q, s3, image); // proves the worker is consuming
    expect((await q.jobs.waitForTerminal(other.job_id, 20_000))?.status).toBe('succeeded');
    const v = await q.jobs.get(p.job_id);
    expect(v).toMatchObject({ status: 'canceled', started_at: null, attempts: 0 });
    expect(await s3.head(resultKey(p.job_id))).toBeNull();
  });

  it('stops a job canceled while running at the next stage', async () => {
    await startWorker();
    const p = await submit(q, s3, image, { phrases: ['test:slow=300'] });
    await until('the job to reach the vision stage', async () => (await q.jobs.get(p.job_id))?.stage === 'vision');
    const flagged = await q.jobs.cancel(p.job_id);
    expect(flagged).toMatchObject({ status: 'running', cancel_requested: true });
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v?.status).toBe('canceled');
    expect(v?.error).toMatchObject({ type: '/problems/job-canceled', status: 409 });
    expect(['vision', 'language']).toContain(v?.stage);
    expect(await s3.head(resultKey(p.job_id))).toBeNull();
  });

  it('expires a job that waited past its deadline (the worker finds it, never runs it)', async () => {
    const p = await submit(q, s3, image, { deadlineMs: 100 });
    await new Promise((r) => setTimeout(r, 200));
    await startWorker();
    await until('the worker to pick the job up', async () => outcomes.get(p.job_id));
    expect(outcomes.get(p.job_id)).toBe('expired');
    const v = await q.jobs.get(p.job_id);
    expect(v).toMatchObject({ status: 'expired', started_at: null, error: { type: '/problems/deadline-exceeded' } });
  });

  it('cancels a running job at the next stage once its deadline passes', async () => {
    await startWorker();
    // Five pipeline stages of 300 ms cannot finish within the 1 s deadline.
    const p = await submit(q, s3, image, { deadlineMs: 1_000, phrases: ['test:slow=300'] });
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v?.status).toBe('canceled');
    expect(v?.error).toMatchObject({ type: '/problems/deadline-exceeded', status: 504 });
    expect(v?.error?.detail).toMatch(/before stage (vision|language|perception|postprocess|store)/);
    expect(v?.started_at).not.toBeNull();
  });

  it('fails bad input at once, with a problem pointing at the field, without retrying', async () => {
    await startWorker();
    const p = await submit(q, s3, image, { phrases: ['test:invalid'] });
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v).toMatchObject({ status: 'failed', attempts: 1, error: { type: '/problems/invalid-input', status: 422 } });
    expect(v?.error?.errors?.[0]?.pointer).toBe('/tasks/0');
    expect((await failedEntry(p.job_id)).attemptsMade).toBe(1);
  });

  it('fails a job whose input image is missing from storage without retrying', async () => {
    await startWorker();
    const noUpload = { put: async () => {} }; // the job references an input that was never stored
    const p = await submit(q, noUpload, image);
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v).toMatchObject({ status: 'failed', attempts: 1, error: { type: '/problems/invalid-input' } });
    expect(v?.error?.detail).toMatch(/not in storage/);
  });

  it('rejects a payload version it does not know with an UnrecoverableError', async () => {
    const p = await submit(q, s3, image);
    await (await q.queues.perception.getJob(p.job_id))!.updateData({ ...p, v: 99 });
    await startWorker();
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v).toMatchObject({ status: 'failed', attempts: 0, error: { type: '/problems/unsupported-job-version' } });
    expect(v?.error?.detail).toMatch(/version 99/);
    const failed = await failedEntry(p.job_id);
    expect(failed.failedReason).toMatch(/version 99/);
    expect(failed.attemptsMade).toBe(1);
  });

  it('retries a transient storage failure with backoff and then succeeds', async () => {
    const flaky = new FlakyBlobStore(s3, 1);
    await startWorker(flaky);
    const p = await submit(q, s3, image);
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v).toMatchObject({ status: 'succeeded', attempts: 2, error: null });
    expect(flaky.putAttempts).toBe(2);
    expect(await s3.head(resultKey(p.job_id))).not.toBeNull();
  });

  it('waits for storage that does not answer without spending attempts, showing why, then succeeds', async () => {
    const flaky = new FlakyBlobStore(s3, 2 * q.settings.jobAttempts);
    await startWorker(flaky);
    const p = await submit(q, s3, image);
    const waiting = await until('the job to wait for storage', async () => {
      const v = await q.jobs.get(p.job_id);
      return v?.status === 'retrying' ? v : null;
    });
    expect(waiting.retry).toMatchObject({ reason: 'storage-unavailable', detail: expect.stringMatching(/storage is not answering/) });
    expect(Date.parse(waiting.retry!.next_attempt_at!)).toBeGreaterThan(Date.parse(waiting.retry!.since));
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v).toMatchObject({ status: 'succeeded', error: null, retry: null });
    expect(flaky.putAttempts).toBe(2 * q.settings.jobAttempts + 1);
    expect((await q.queues.perception.getJob(p.job_id))?.attemptsMade ?? 0).toBeLessThan(q.settings.jobAttempts);
  });

  it('a lost bucket holds the job as storage-unavailable instead of failing it as "input missing"', async () => {
    await startWorker(new S3BlobStore({ bucket: `gone-${Date.now()}`, region: 'us-east-1', endpoint: process.env.TEST_S3_ENDPOINT, forcePathStyle: true }));
    const p = await submit(q, s3, image);
    const v = await until('the job to wait for storage', async () => {
      const x = await q.jobs.get(p.job_id);
      return x && x.status !== 'queued' && x.status !== 'running' ? x : null;
    });
    expect(v).toMatchObject({ status: 'retrying', error: null, retry: { reason: 'storage-unavailable' } });
    expect((await q.jobs.cancel(p.job_id))?.status).toBe('canceled');
  });

  it('fails with storage-unavailable once storage stays down past the deadline, naming no internal address', async () => {
    const flaky = new FlakyBlobStore(s3, 1000);
    await startWorker(flaky);
    const p = await submit(q, s3, image, { deadlineMs: 1_500 });
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v).toMatchObject({ status: 'failed', error: { type: '/problems/storage-unavailable', status: 503 } });
    expect(v?.error?.detail).toMatch(/deadline/);
    expect(JSON.stringify(v?.error)).not.toMatch(/injected|ECONN|\d+\.\d+\.\d+\.\d+/);
  });

  it('retries a model failure up to JOB_ATTEMPTS, reads retrying between attempts, and fails in the user\'s terms', async () => {
    await startWorker();
    const p = await submit(q, s3, image, { phrases: ['test:crash'] });
    const between = await until('the job to be between attempts', async () => {
      const v = await q.jobs.get(p.job_id);
      return v?.status === 'retrying' ? v : null;
    });
    expect(between.retry).toMatchObject({ reason: 'processing-failed' });
    const v = await q.jobs.waitForTerminal(p.job_id, 20_000);
    expect(v).toMatchObject({ status: 'failed', attempts: q.settings.jobAttempts, error: { type: '/problems/processing-failed', status: 500 } });
    expect(v?.error?.detail).toBe(`the model could not process the image (${q.settings.jobAttempts} attempts)`);
  });
});

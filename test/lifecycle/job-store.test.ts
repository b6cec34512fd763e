// The job store against a real Redis: create/get/cancel/wait as the gateway uses them, and the
// status rules the worker relies on (no moving backwards, no finishing twice).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobView } from '../../contracts/job-view.js';
import { jobProblems as problems } from '../../contracts/problem.js';
import { listLiveWorkers, startHeartbeat } from '../../lib/queue/index.js';
import { makePayload } from '../support/payloads.js';
import { until } from '../support/wait.js';
import { openQueueEnv, type QueueEnv } from '../support/queue-env.js';

let q: QueueEnv;
beforeAll(() => {
  q = openQueueEnv();
});
afterAll(async () => {
  await q.close();
});

/** Runs `fn` while worker `workerId` has a live heartbeat, as a running worker does. */
async function whileBeating(workerId: string, fn: () => Promise<void>): Promise<void> {
  const hb = startHeartbeat(q.redis, q.settings.prefix, { worker_id: workerId, provider: 'cpu', model: { name: 'm', version: '1', variant: 'paper' } }, 500);
  try {
    await until('the heartbeat', async () => (await listLiveWorkers(q.redis, q.settings.prefix)).some((w) => w.worker_id === workerId));
    await fn();
  } finally {
    await hb.stop();
  }
}

describe('job store', () => {
  it('creates a queued job with its queue entry and reads it back as a valid view', async () => {
    const p = makePayload({ metadata: { order: '42' }, webhook: { url: 'https://example.com/hook', events: ['job.succeeded'] } });
    const created = await q.submit(p);
    expect(created.status).toBe('queued');
    const view = await q.jobs.get(p.job_id);
    expect(JobView.parse(view)).toEqual(view);
    expect(view).toMatchObject({ id: p.job_id, key_id: 'test-key', status: 'queued', metadata: { order: '42' } });
    expect(view!.webhook).toEqual({ url: 'https://example.com/hook', events: ['job.succeeded'], attempts: [] });
    const entry = await q.queues.perception.getJob(p.job_id);
    expect(entry?.data).toEqual(p);
    await expect(q.submit(p)).rejects.toThrow(/already exists/);
  });

  it('the view create returns is the record as get reads it back', async () => {
    for (const p of [makePayload(), makePayload({ metadata: { a: 'b' }, webhook: { url: 'https://example.com/h', events: ['job.failed'] } })]) {
      const created = await q.submit(p);
      expect(created).toEqual(await q.jobs.get(p.job_id));
    }
  });

  it("writes the BullMQ entry BullMQ's own Queue.add writes for the same job (its script, run inside ours)", async () => {
    await q.submit(makePayload()); // a second job from the same template must not carry the first one's id or time
    const p = makePayload();
    const before = Date.now();
    await q.submit(p);
    const after = Date.now();
    const twin = makePayload();
    await q.queues.perception.add('perceive', { ...p, job_id: twin.job_id }, { jobId: twin.job_id });
    const [ours, theirs] = await Promise.all([q.queues.perception.getJob(p.job_id), q.queues.perception.getJob(twin.job_id)]);
    expect(ours!.name).toBe(theirs!.name);
    expect(ours!.data).toEqual({ ...theirs!.data, job_id: p.job_id });
    expect({ ...ours!.opts, jobId: undefined }).toEqual({ ...theirs!.opts, jobId: undefined });
    expect(ours!.opts.jobId).toBe(p.job_id);
    expect(ours!.id).toBe(p.job_id);
    expect(ours!.timestamp).toBeGreaterThanOrEqual(before);
    expect(ours!.timestamp).toBeLessThanOrEqual(after);
    expect(await ours!.getState()).toBe('waiting');
  });

  it('returns null for unknown jobs', async () => {
    expect(await q.jobs.get('job_nope')).toBeNull();
    expect(await q.jobs.cancel('job_nope')).toBeNull();
  });

  it('cancels a queued job at once, removes its queue entry and wakes waiters', async () => {
    const p = makePayload();
    await q.submit(p);
    const waiting = q.jobs.waitForTerminal(p.job_id, 10_000);
    const t0 = Date.now();
    const canceled = await q.jobs.cancel(p.job_id);
    expect(canceled?.status).toBe('canceled');
    expect(canceled?.error?.type).toBe('/problems/job-canceled');
    expect(canceled?.cancel_requested).toBe(true);
    expect((await waiting)?.status).toBe('canceled');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await q.queues.perception.getJob(p.job_id)).toBeUndefined();
    // Canceling again leaves it as it is; a worker can no longer start it.
    expect((await q.jobs.cancel(p.job_id))?.status).toBe('canceled');
    expect(await q.lifecycle.markRunning(p.job_id, 'w1')).toBeNull();
  });

  it('cancels a job between attempts at once, with its delayed queue entry', async () => {
    const p = makePayload();
    await q.submit(p);
    await q.lifecycle.markRunning(p.job_id, 'w1');
    const retry = { reason: 'processing-failed' as const, detail: 'x', since: new Date().toISOString(), next_attempt_at: null };
    expect((await q.lifecycle.markRetrying(p.job_id, retry))?.view).toMatchObject({ status: 'retrying', retry });
    const canceled = await q.jobs.cancel(p.job_id);
    expect(canceled).toMatchObject({ status: 'canceled', cancel_requested: true, error: { type: '/problems/job-canceled' } });
    expect(await q.queues.perception.getJob(p.job_id)).toBeUndefined();
    expect(await q.lifecycle.markRunning(p.job_id, 'w2')).toBeNull();
  });

  it('shows a running job whose worker stopped beating as retrying (worker-lost), and running while it beats', async () => {
    const p = makePayload();
    await q.submit(p);
    await q.lifecycle.markRunning(p.job_id, 'w-beating');
    await whileBeating('w-beating', async () => expect((await q.jobs.get(p.job_id))?.status).toBe('running'));
    const lost = await q.jobs.get(p.job_id);
    expect(lost).toMatchObject({ status: 'retrying', retry: { reason: 'worker-lost', next_attempt_at: null } });
  });

  it('flags a running job for cancellation instead of finishing it', async () => {
    const p = makePayload();
    await q.submit(p);
    const r = await q.lifecycle.markRunning(p.job_id, 'w1');
    expect(r?.firstStart).toBe(true);
    expect(await q.lifecycle.stopReason(p.job_id)).toBeNull();
    const v = await q.jobs.cancel(p.job_id);
    expect(v).toMatchObject({ status: 'running', cancel_requested: true });
    expect(await q.lifecycle.stopReason(p.job_id)).toBe('canceled');
    const done = await q.lifecycle.markCanceled(p.job_id, problems.canceledByUser('vision'));
    expect(done?.applied).toBe(true);
    expect(done?.view.status).toBe('canceled');
  });

  it('a second start after a stall is not a first start, and a finished job cannot finish again', async () => {
    const p = makePayload();
    await q.submit(p);
    expect((await q.lifecycle.markRunning(p.job_id, 'w1'))?.firstStart).toBe(true);
    const again = await q.lifecycle.markRunning(p.job_id, 'w2');
    expect(again?.firstStart).toBe(false);
    expect(again?.view.attempts).toBe(2);
    expect(await q.lifecycle.setStage(p.job_id, 'vision', 0.4, { fetch: 3 })).toBe(true);
    expect((await q.jobs.get(p.job_id))).toMatchObject({ stage: 'vision', progress: 0.4, timings_ms: { fetch: 3 } });
    const failed = await q.lifecycle.markFailed(p.job_id, problems.internal('boom'));
    expect(failed?.applied).toBe(true);
    const late = await q.lifecycle.markCanceled(p.job_id, problems.canceledByUser());
    expect(late).toMatchObject({ applied: false, view: { status: 'failed' } });
    expect(await q.lifecycle.setStage(p.job_id, 'store', 0.9, {})).toBe(false);
  });

  it('expires a queued job whose deadline passed when it is read', async () => {
    const p = makePayload({ deadlineMs: 50 });
    await q.submit(p);
    await new Promise((r) => setTimeout(r, 100));
    const v = await q.jobs.get(p.job_id);
    expect(v?.status).toBe('expired');
    expect(v?.error?.type).toBe('/problems/deadline-exceeded');
    expect(await q.queues.perception.getJob(p.job_id)).toBeUndefined();
  });

  it('waitForTerminal returns the running job when the time runs out', async () => {
    const p = makePayload();
    await q.submit(p);
    await q.lifecycle.markRunning(p.job_id, 'w-alive');
    await whileBeating('w-alive', async () => {
      const t0 = Date.now();
      const v = await q.jobs.waitForTerminal(p.job_id, 200);
      expect(v?.status).toBe('running');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    });
  });

  it('records webhook attempts on the job', async () => {
    const p = makePayload({ webhook: { url: 'https://example.com/hook', events: ['job.started'] } });
    await q.submit(p);
    await q.lifecycle.recordWebhookAttempt(p.job_id, {
      event: 'job.started',
      webhook_id: 'msg_x',
      attempt: 1,
      at: new Date().toISOString(),
      outcome: 'failed',
      status_code: 503,
      duration_ms: 4,
    });
    const v = await q.jobs.get(p.job_id);
    expect(v?.webhook?.attempts).toHaveLength(1);
    expect(v?.webhook?.attempts[0]).toMatchObject({ outcome: 'failed', status_code: 503 });
  });
});

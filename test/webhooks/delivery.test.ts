// Webhook delivery against a local receiver, through the real webhook queue and worker: Standard Webhooks
// signatures checked with the `standardwebhooks` verifier, retries after 5xx with a stable webhook-id,
// 410 stops, redirects are not followed, timeouts retry, internal targets are refused, every attempt is
// recorded on the job.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { parseAllowlist } from '../../lib/net/ssrf.js';
import { JobView } from '../../contracts/job-view.js';
import { jobProblems as problems } from '../../contracts/problem.js';
import { webhookId } from '../../lib/webhooks/delivery.js';
import { startWebhookWorker } from '../../workers/webhooks/worker.js';
import { emptyResult as result, makePayload } from '../support/payloads.js';
import { openQueueEnv, type QueueEnv } from '../support/queue-env.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { until } from '../support/wait.js';

const secret = `whsec_${randomBytes(24).toString('base64')}`;
let q: QueueEnv;
let receiver: WebhookReceiver;
let worker: ReturnType<typeof startWebhookWorker>;

beforeAll(async () => {
  q = openQueueEnv();
  receiver = new WebhookReceiver();
  await receiver.listen();
  worker = startWebhookWorker({
    redis: q.redis,
    settings: q.settings,
    lifecycle: q.lifecycle,
    secretFor: (keyId) => (keyId === 'test-key' ? secret : undefined),
    allowlist: parseAllowlist(['127.0.0.1']),
    timeoutMs: 300,
    log: createLogger({ level: 'silent' }),
  });
  await worker.waitUntilReady();
});
afterAll(async () => {
  await worker.close();
  await receiver.close();
  await q.close();
});


/** Creates a job subscribed to `events` at `url` and runs it to success through the store, as a worker does. */
async function runJob(url: string, events: NonNullable<JobView['webhook']>['events']) {
  const p = makePayload({ webhook: { url, events } });
  await q.submit(p);
  await q.lifecycle.markRunning(p.job_id, 'w');
  await q.lifecycle.markSucceeded(p.job_id, { resultKey: `jobs/${p.job_id}/result.json`, result: result(p.job_id), timings: {} });
  return p.job_id;
}

async function attemptsOf(id: string, n: number) {
  return until(`${n} webhook attempts on ${id}`, async () => {
    const a = (await q.jobs.get(id))?.webhook?.attempts ?? [];
    return a.length >= n ? a : null;
  });
}

describe('webhook delivery', () => {
  it('signs every attempt, retries 5xx with the same webhook-id and body, and records each attempt', async () => {
    const url = receiver.script('/flaky', [{ status: 503 }, { status: 500 }, { status: 204 }]);
    const id = await runJob(url, ['job.succeeded']);
    const attempts = await attemptsOf(id, 3);
    expect(attempts.map((a) => [a.attempt, a.outcome, a.status_code])).toEqual([
      [1, 'failed', 503],
      [2, 'failed', 500],
      [3, 'delivered', 204],
    ]);
    expect(attempts[0]!.next_attempt_at).toBeDefined();
    expect(attempts[2]!.next_attempt_at).toBeUndefined();

    const got = receiver.on('/flaky');
    expect(got).toHaveLength(3);
    const verifier = new Webhook(secret);
    for (const r of got) {
      const payload = verifier.verify(r.body, r.headers as Record<string, string>) as { type: string; data: JobView };
      expect(payload.type).toBe('job.succeeded');
      expect(payload.data).toMatchObject({ id, status: 'succeeded' });
      expect(r.headers['webhook-id']).toBe(webhookId(id, 'job.succeeded'));
      expect(r.headers['content-type']).toBe('application/json');
    }
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    // Only the subscribed event: job.started was not sent.
    expect(attempts.every((a) => a.event === 'job.succeeded')).toBe(true);
    // A signature made with another secret does not verify.
    expect(() => new Webhook(`whsec_${randomBytes(24).toString('base64')}`).verify(got[0]!.body, got[0]!.headers as Record<string, string>)).toThrow();
  });

  it('stops after a 410', async () => {
    const url = receiver.script('/gone', [{ status: 410 }, { status: 200 }]);
    const id = await runJob(url, ['job.succeeded']);
    const [a] = await attemptsOf(id, 1);
    expect(a).toMatchObject({ outcome: 'gone', status_code: 410 });
    const wid = webhookId(id, 'job.succeeded');
    const entry = await until('the delivery to fail', async () =>
      (await q.queues.webhooks.getJobState(wid)) === 'failed' ? q.queues.webhooks.getJob(wid) : null,
    );
    expect(entry.attemptsMade).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(receiver.on('/gone')).toHaveLength(1);
  });

  it("a 410 disables the job's endpoint: its later events are refused, not sent", async () => {
    const url = receiver.script('/gone-then', [{ status: 410 }, { status: 200 }]);
    const p = makePayload({ webhook: { url, events: ['job.started', 'job.succeeded'] } });
    await q.submit(p);
    await q.lifecycle.markRunning(p.job_id, 'w');
    const [started] = await attemptsOf(p.job_id, 1);
    expect(started).toMatchObject({ event: 'job.started', outcome: 'gone' });
    await q.lifecycle.markSucceeded(p.job_id, { resultKey: `jobs/${p.job_id}/result.json`, result: result(p.job_id), timings: {} });
    const [, succeeded] = await attemptsOf(p.job_id, 2);
    expect(succeeded).toMatchObject({ event: 'job.succeeded', outcome: 'refused', error: expect.stringMatching(/410 Gone to an earlier event/) });
    expect(receiver.on('/gone-then')).toHaveLength(1);
  });

  it('every terminal status sends exactly one terminal event, even when it is reached twice', async () => {
    const url = receiver.script('/terminal', [{ status: 200 }]);
    const all = { webhook: { url, events: ['job.started', 'job.succeeded', 'job.failed', 'job.canceled', 'job.expired'] as const } };
    const ends = {
      succeeded: async (id: string) => {
        await q.lifecycle.markRunning(id, 'w');
        for (let i = 0; i < 2; i++) await q.lifecycle.markSucceeded(id, { resultKey: `jobs/${id}/result.json`, result: result(id), timings: {} });
      },
      failed: async (id: string) => {
        for (let i = 0; i < 2; i++) await q.lifecycle.markFailed(id, problems.internal('boom'));
      },
      canceled: async (id: string) => {
        for (let i = 0; i < 2; i++) await q.jobs.cancel(id);
      },
      expired: async (id: string) => {
        await new Promise((r) => setTimeout(r, 60));
        await q.jobs.get(id); // the gateway's read expires a queued job past its deadline
        await q.lifecycle.markExpired(id); // and a worker finding it later changes nothing
      },
    };
    const ids: Record<string, string> = {};
    for (const [status, end] of Object.entries(ends)) {
      const p = makePayload({ webhook: { url, events: [...all.webhook.events] }, deadlineMs: status === 'expired' ? 30 : 60_000 });
      await q.submit(p);
      await end(p.job_id);
      ids[status] = p.job_id;
      expect((await q.jobs.get(p.job_id))?.status).toBe(status);
    }
    await until('every terminal event', async () => receiver.on('/terminal').length >= 5 || null);
    await new Promise((r) => setTimeout(r, 300));
    const byJob = new Map<string, string[]>();
    for (const r of receiver.on('/terminal')) {
      const { type, data } = JSON.parse(r.body) as { type: string; data: { id: string } };
      byJob.set(data.id, [...(byJob.get(data.id) ?? []), type]);
    }
    expect(byJob.get(ids.succeeded!)?.sort()).toEqual(['job.started', 'job.succeeded']);
    expect(byJob.get(ids.failed!)).toEqual(['job.failed']);
    expect(byJob.get(ids.canceled!)).toEqual(['job.canceled']);
    expect(byJob.get(ids.expired!)).toEqual(['job.expired']);
  });

  it('does not follow redirects: a 3xx is a failed attempt, retried until attempts run out', async () => {
    const target = receiver.script('/target', [{ status: 200 }]);
    const url = receiver.script('/redirect', [{ status: 302, headers: { location: target } }]);
    const id = await runJob(url, ['job.succeeded']);
    const attempts = await attemptsOf(id, 5);
    expect(attempts.every((a) => a.outcome === 'failed' && a.status_code === 302)).toBe(true);
    expect(attempts[0]!.error).toMatch(/redirect .* not followed/);
    expect(receiver.on('/target')).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 400));
    expect((await q.jobs.get(id))?.webhook?.attempts).toHaveLength(5);
  });

  it('gives up on a receiver slower than the timeout and retries', async () => {
    const url = receiver.script('/slow', [{ status: 200, delayMs: 1_000 }, { status: 200 }]);
    const id = await runJob(url, ['job.succeeded']);
    const attempts = await attemptsOf(id, 2);
    expect(attempts[0]).toMatchObject({ outcome: 'failed', status_code: null });
    expect(attempts[0]!.error).toMatch(/within 300 ms/);
    expect(attempts[1]).toMatchObject({ outcome: 'delivered', status_code: 200 });
  });

  it('refuses internal and metadata addresses without sending anything', async () => {
    for (const url of ['https://10.1.2.3/hook', 'https://169.254.169.254/latest/meta-data']) {
      const id = await runJob(url, ['job.succeeded']);
      const [a] = await attemptsOf(id, 1);
      expect(a).toMatchObject({ outcome: 'refused', status_code: null });
      expect(a!.error).toMatch(/not allowed/);
    }
  });

  it('delivers job.started, job.canceled and job.failed only when subscribed', async () => {
    const url = receiver.script('/events', [{ status: 200 }]);
    const canceled = makePayload({ webhook: { url, events: ['job.started', 'job.canceled'] } });
    await q.submit(canceled);
    await q.lifecycle.markRunning(canceled.job_id, 'w');
    await q.jobs.cancel(canceled.job_id);
    await q.lifecycle.markCanceled(canceled.job_id, problems.canceledByUser('vision'));
    const failedUnsubscribed = makePayload({ webhook: { url, events: ['job.succeeded'] } });
    const failedSubscribed = makePayload({ webhook: { url, events: ['job.failed'] } });
    for (const p of [failedUnsubscribed, failedSubscribed]) {
      await q.submit(p);
      await q.lifecycle.markFailed(p.job_id, problems.internal('boom'));
    }

    const a = await attemptsOf(canceled.job_id, 2);
    expect(a.map((x) => x.event).sort()).toEqual(['job.canceled', 'job.started']);
    expect((await attemptsOf(failedSubscribed.job_id, 1))[0]).toMatchObject({ event: 'job.failed', outcome: 'delivered' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await q.jobs.get(failedUnsubscribed.job_id))?.webhook?.attempts).toEqual([]);
    const types = receiver.on('/events').map((r) => (JSON.parse(r.body) as { type: string }).type).sort();
    expect(types).toEqual(['job.canceled', 'job.failed', 'job.started']);
  });
});

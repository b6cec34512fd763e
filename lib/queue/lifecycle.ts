// The workers' side of the queue: a perception worker moves its job through running, stages and one terminal
// status; the webhook sender records its delivery attempts. The gateway's side is jobs.ts.
import type { Stage } from '../../contracts/job.js';
import type { Problem } from '../../contracts/problem.js';
import type { PerceptionResult } from '../../contracts/result.js';
import { JOB_STATUSES, type JobView, type Retry } from '../../contracts/job-view.js';
import type { WebhookAttempt } from '../../contracts/webhook.js';
import { appendWebhookAttempt, runScript } from '../redis/scripts.js';
import type { JobTransitions, Transitioned } from './transitions.js';

export type StopReason = 'canceled' | 'deadline';

export interface SucceededOutcome {
  resultKey: string;
  result: PerceptionResult;
  timings: Record<string, number>;
}

export interface JobLifecycle {
  /** queued|running|retrying -> running (running again after a retry or a stalled worker). Null when the job
   *  is gone or already terminal: the worker must skip it. firstStart: this call started it (job.started). */
  markRunning(id: string, workerId: string): Promise<{ view: JobView; firstStart: boolean } | null>;
  /** running -> retrying: the attempt ended without an outcome and the job waits for its next one. */
  markRetrying(id: string, retry: Retry): Promise<Transitioned | null>;
  /** When the job began waiting for storage (set by the first call, kept across attempts); null unless running. */
  outageSince(id: string): Promise<number | null>;
  /** Records the stage now starting, progress and timings so far; false when the job is no longer running. */
  setStage(id: string, stage: Stage, progress: number, timings: Record<string, number>): Promise<boolean>;
  /** Why a running job should stop now, or null. */
  stopReason(id: string): Promise<StopReason | null>;
  markSucceeded(id: string, outcome: SucceededOutcome): Promise<Transitioned | null>;
  markFailed(id: string, problem: Problem, timings?: Record<string, number>): Promise<Transitioned | null>;
  markCanceled(id: string, problem: Problem, timings?: Record<string, number>): Promise<Transitioned | null>;
  /** queued -> expired (the deadline passed before the job started). */
  markExpired(id: string): Promise<Transitioned | null>;
  /** The webhook sender's record of one delivery attempt, listed on the job's view. */
  recordWebhookAttempt(id: string, attempt: WebhookAttempt): Promise<void>;
  /** After a 410 Gone: no more events of this job are sent. */
  disableWebhook(id: string): Promise<void>;
  webhookDisabled(id: string): Promise<boolean>;
}

const timingsField = (timings?: Record<string, number>): Record<string, string> =>
  timings ? { timings_ms: JSON.stringify(timings) } : {};

export function createJobLifecycle(t: JobTransitions, resultInlineMaxBytes: number): JobLifecycle {
  return {
    async markRunning(id, workerId) {
      const r = await t.apply(id, {
        from: ['queued', 'running', 'retrying'],
        to: 'running',
        setnx: { started_at: new Date().toISOString() },
        set: { worker_id: workerId, retry: '' },
        incr: ['attempts'],
      });
      if (!r || !r.applied) return null;
      const firstStart = r.previous === 'queued';
      if (firstStart) await t.emit(r.view, 'job.started');
      return { view: r.view, firstStart };
    },

    async markRetrying(id, retry) {
      return t.apply(id, { from: ['running'], to: 'retrying', set: { retry: JSON.stringify(retry) } });
    },

    async outageSince(id) {
      const r = await t.apply(id, { from: ['running'], setnx: { waiting_since: String(Date.now()) } });
      return r?.applied ? Number(r.fields.waiting_since) : null;
    },

    async setStage(id, stage, progress, timings) {
      const r = await t.apply(id, { from: ['running'], set: { stage, progress: String(progress), ...timingsField(timings) } });
      return r?.applied ?? false;
    },

    async stopReason(id) {
      const [status, cancelRequested, deadline] = await t.redis.hmget(t.keys.job(id), 'status', 'cancel_requested', 'deadline_at');
      if (status !== 'running' || cancelRequested === '1') return 'canceled';
      if (deadline && Date.parse(deadline) < Date.now()) return 'deadline';
      return null;
    },

    markSucceeded(id, { resultKey, result, timings }) {
      const json = JSON.stringify(result);
      return t.finish(id, ['running'], 'succeeded', {
        result_key: resultKey,
        ...(Buffer.byteLength(json) <= resultInlineMaxBytes ? { result: json } : {}),
        model: JSON.stringify(result.model),
        provider: result.provider,
        progress: '1',
        ...timingsField(timings),
      });
    },

    markFailed(id, problem, timings) {
      return t.finish(id, ['queued', 'running', 'retrying'], 'failed', { error: JSON.stringify(problem), ...timingsField(timings) });
    },

    markCanceled(id, problem, timings) {
      return t.finish(id, ['queued', 'running', 'retrying'], 'canceled', { error: JSON.stringify(problem), ...timingsField(timings) });
    },

    async markExpired(id) {
      const record = await t.read(id);
      return record ? t.expire(id, record.view.deadline_at) : null;
    },

    async disableWebhook(id) {
      await t.apply(id, { from: [...JOB_STATUSES], set: { webhook_gone: '1' } });
    },

    async webhookDisabled(id) {
      return (await t.redis.hget(t.keys.job(id), 'webhook_gone')) === '1';
    },

    async recordWebhookAttempt(id, attempt) {
      await runScript(t.redis, appendWebhookAttempt, {
        recordKey: t.keys.job(id),
        attemptsKey: t.keys.webhookAttempts(id),
        attemptJson: JSON.stringify(attempt),
      });
    },
  };
}

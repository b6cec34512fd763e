// The job store: creates jobs (record + queue entry), reads and cancels them for the gateway, and moves
// them through their lifecycle for the worker. Every status change is one atomic script (scripts.ts) that
// only applies from the allowed statuses; terminal changes publish on the terminal channel, count the
// outcome and enqueue the subscribed webhook.
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobPayload, Stage } from '../../contracts/job.js';
import type { PerceptionResult } from '../../contracts/result.js';
import type { Logger } from '../log.js';
import { enqueueWebhook } from '../webhooks/delivery.js';
import { isTerminal, type JobView } from '../../contracts/job-view.js';
import { jobProblems as problems, type Problem } from '../../contracts/problem.js';
import type { WebhookAttempt, WebhookEvent } from '../../contracts/webhook.js';
import { newJobView, newRecordFields, pairsToFields, recordToView } from './job-record.js';
import { redisKeys } from './keys.js';
import { appendAttempt, CREATE_JOB, CREATE_JOB_KEYS, defineScript, transition, type TransitionSpec } from './scripts.js';
import { BullmqAddTemplate } from './bullmq-add.js';
import { TerminalWaiter } from './terminal-waiter.js';

export interface JobStoreOptions {
  /** Command connection (the gateway's client connection or a worker's). */
  redis: Redis;
  /** The perception queue (queues.ts). */
  queue: Queue;
  /** The webhook delivery queue (queues.ts). */
  webhookQueue: Queue;
  /** Redis key prefix (QueueSettings.prefix). */
  prefix: string;
  /** Seconds a finished job record is kept (JOB_RETENTION_S). */
  retentionS: number;
  /** Largest result JSON inlined in the record (RESULT_INLINE_MAX_BYTES). */
  resultInlineMaxBytes: number;
  log?: Logger;
}

export class JobExistsError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} already exists`);
  }
}

export type StopReason = 'canceled' | 'deadline';

export interface Transitioned {
  /** False when the job was no longer in a status this change applies to (someone else finished it). */
  applied: boolean;
  view: JobView;
}

export interface SucceededOutcome {
  resultKey: string;
  result: PerceptionResult;
  timings: Record<string, number>;
}

/** A job ready to be created: the KEYS and ARGV of CREATE_JOB_LUA (scripts.ts) and the job as it will read. */
export interface PreparedJob {
  keys: string[];
  argv: (string | number)[];
  view: JobView;
}

export interface JobStore {
  // Gateway side
  /** The inputs of creating this job, for a script that creates it after checks of its own (the gateway's
   *  admission). */
  prepareCreate(payload: JobPayload): Promise<PreparedJob>;
  /** Writes the record (status queued) and enqueues the job, in one script run; throws JobExistsError on a
   *  reused id. */
  create(payload: JobPayload): Promise<JobView>;
  /** The job, or null when unknown or past retention. A queued job past its deadline is expired here. */
  get(id: string): Promise<JobView | null>;
  /** Queued: canceled at once. Running: cancel_requested is set and the worker stops at the next stage.
   *  Terminal: unchanged. Null when unknown. */
  cancel(id: string): Promise<JobView | null>;
  /** The job once terminal, or as it is after `ms`; null when unknown. */
  waitForTerminal(id: string, ms: number): Promise<JobView | null>;

  // Worker side
  /** queued|running -> running (running again after a retry or a stalled worker). Null when the job is
   *  gone or already terminal: the worker must skip it. firstStart: this call started it (job.started). */
  markRunning(id: string, workerId: string): Promise<{ view: JobView; firstStart: boolean } | null>;
  /** Records the stage now starting, progress and timings so far; false when the job is no longer running. */
  setStage(id: string, stage: Stage, progress: number, timings: Record<string, number>): Promise<boolean>;
  /** Why a running job should stop now, or null. */
  stopReason(id: string): Promise<StopReason | null>;
  markSucceeded(id: string, outcome: SucceededOutcome): Promise<Transitioned | null>;
  markFailed(id: string, problem: Problem, timings?: Record<string, number>): Promise<Transitioned | null>;
  markCanceled(id: string, problem: Problem, timings?: Record<string, number>): Promise<Transitioned | null>;
  /** queued -> expired (the deadline passed before the job started). */
  markExpired(id: string): Promise<Transitioned | null>;

  // Webhook sender side
  recordWebhookAttempt(id: string, attempt: WebhookAttempt): Promise<void>;

  close(): Promise<void>;
}

const TERMINAL_EVENT: Partial<Record<JobView['status'], WebhookEvent>> = {
  succeeded: 'job.succeeded',
  failed: 'job.failed',
  canceled: 'job.canceled',
};

export function createJobStore(opts: JobStoreOptions): JobStore {
  const { redis, queue, webhookQueue, retentionS } = opts;
  const keys = redisKeys(opts.prefix);
  const waiter = new TerminalWaiter(redis, keys.terminalChannel);
  const createJob = defineScript(redis, 'mvpCreateJob', CREATE_JOB_KEYS, CREATE_JOB);
  let bullmqAdd: Promise<BullmqAddTemplate> | undefined;
  const now = (): string => new Date().toISOString();

  async function apply(id: string, spec: TransitionSpec): Promise<(Transitioned & { previous: string }) | null> {
    const reply = (await transition.run(
      redis,
      [keys.job(id), keys.webhookAttempts(id), keys.metricJobOutcomes],
      [JSON.stringify(spec), id],
    )) as [number, string?, string[]?, string[]?];
    if (reply[0] === -1) return null;
    const [applied, previous, flat, attempts] = reply;
    return { applied: applied === 1, previous: previous!, view: recordToView(pairsToFields(flat!), attempts!) };
  }

  /** Moves a job to a terminal status and does what follows from it: wake waiters, count, webhook. */
  async function finish(
    id: string,
    from: string[],
    to: 'succeeded' | 'failed' | 'canceled' | 'expired',
    set: Record<string, string>,
  ): Promise<Transitioned | null> {
    const r = await apply(id, {
      from,
      to,
      set: { ...set, finished_at: now() },
      ttl: retentionS,
      publish: keys.terminalChannel,
      count: to,
    });
    if (!r) return null;
    if (r.applied) {
      const event = TERMINAL_EVENT[to];
      if (event) await enqueueWebhook(webhookQueue, r.view, event);
      // The queue entry is only transport; drop it so a queued-then-canceled job is never picked up.
      if (r.previous === 'queued') await removeQueueEntry(id);
    }
    return { applied: r.applied, view: r.view };
  }

  async function removeQueueEntry(id: string): Promise<void> {
    try {
      await queue.remove(id);
    } catch (e) {
      // An entry locked by a worker cannot be removed; that worker sees the terminal record and skips it.
      opts.log?.debug({ job_id: id, err: e }, 'queue entry not removed');
    }
  }

  async function read(id: string): Promise<JobView | null> {
    const res = await redis.multi().hgetall(keys.job(id)).lrange(keys.webhookAttempts(id), 0, -1).exec();
    if (!res) throw new Error(`job ${id}: Redis transaction aborted`);
    const [[e1, fields], [e2, attempts]] = res as [[Error | null, Record<string, string>], [Error | null, string[]]];
    if (e1 || e2) throw e1 ?? e2;
    if (!fields || !fields.status) return null;
    return recordToView(fields, attempts);
  }

  /** queued -> expired, for a record already read (its deadline names the problem). */
  const expire = (id: string, deadlineAt: string): Promise<Transitioned | null> =>
    finish(id, ['queued'], 'expired', { error: JSON.stringify(problems.deadlineExceeded(deadlineAt)) });

  const timingsField = (timings?: Record<string, number>): Record<string, string> =>
    timings ? { timings_ms: JSON.stringify(timings) } : {};

  const store: JobStore = {
    async prepareCreate(payload) {
      const fields = newRecordFields(payload);
      const ttl = Math.max(0, Math.ceil((Date.parse(payload.deadline_at) - Date.now()) / 1000)) + retentionS;
      const bull = (await (bullmqAdd ??= BullmqAddTemplate.build(queue, 'perceive'))).inputs(payload.job_id, payload);
      const pairs: string[] = [];
      for (const name in fields) pairs.push(name, fields[name]!);
      return { keys: [keys.job(payload.job_id), ...bull.keys], argv: [ttl, pairs.length, ...pairs, ...bull.argv], view: newJobView(payload) };
    },

    async create(payload) {
      const job = await store.prepareCreate(payload);
      if ((await createJob(...job.keys, ...job.argv)) !== 1) throw new JobExistsError(payload.job_id);
      return job.view;
    },

    async get(id) {
      const view = await read(id);
      if (view && view.status === 'queued' && Date.parse(view.deadline_at) < Date.now()) {
        return (await expire(id, view.deadline_at))?.view ?? null;
      }
      return view;
    },

    async cancel(id) {
      const r = await finish(id, ['queued'], 'canceled', { error: JSON.stringify(problems.canceledByUser()) });
      if (!r || r.applied || r.view.status !== 'running') return r?.view ?? null;
      const flagged = await apply(id, { from: ['running'], set: { cancel_requested: '1' } });
      return flagged?.view ?? null;
    },

    async waitForTerminal(id, ms) {
      const first = await store.get(id);
      if (!first || isTerminal(first.status) || ms <= 0) return first;
      await waiter.wait(id, ms, async () => {
        const v = await read(id);
        return !v || isTerminal(v.status);
      });
      return store.get(id);
    },

    async markRunning(id, workerId) {
      const r = await apply(id, {
        from: ['queued', 'running'],
        to: 'running',
        setnx: { started_at: now() },
        set: { worker_id: workerId },
        incr: ['attempts'],
      });
      if (!r || !r.applied) return null;
      const firstStart = r.previous === 'queued';
      if (firstStart) await enqueueWebhook(webhookQueue, r.view, 'job.started');
      return { view: r.view, firstStart };
    },

    async setStage(id, stage, progress, timings) {
      const r = await apply(id, {
        from: ['running'],
        set: { stage, progress: String(progress), ...timingsField(timings) },
      });
      return r?.applied ?? false;
    },

    async stopReason(id) {
      const [status, cancelRequested, deadline] = await redis.hmget(keys.job(id), 'status', 'cancel_requested', 'deadline_at');
      if (status !== 'running' || cancelRequested === '1') return 'canceled';
      if (deadline && Date.parse(deadline) < Date.now()) return 'deadline';
      return null;
    },

    async markSucceeded(id, { resultKey, result, timings }) {
      const json = JSON.stringify(result);
      return finish(id, ['running'], 'succeeded', {
        result_key: resultKey,
        ...(Buffer.byteLength(json) <= opts.resultInlineMaxBytes ? { result: json } : {}),
        model: JSON.stringify(result.model),
        provider: result.provider,
        progress: '1',
        ...timingsField(timings),
      });
    },

    markFailed(id, problem, timings) {
      return finish(id, ['queued', 'running'], 'failed', { error: JSON.stringify(problem), ...timingsField(timings) });
    },

    markCanceled(id, problem, timings) {
      return finish(id, ['queued', 'running'], 'canceled', { error: JSON.stringify(problem), ...timingsField(timings) });
    },

    async markExpired(id) {
      const view = await read(id);
      return view ? expire(id, view.deadline_at) : null;
    },

    async recordWebhookAttempt(id, attempt) {
      await appendAttempt.run(redis, [keys.job(id), keys.webhookAttempts(id)], [JSON.stringify(attempt)]);
    },

    async close() {
      await waiter.close();
    },
  };
  return store;
}

// The gateway's side of the queue: submit a job (admission and creation in one script run, submitJob-13.lua),
// read it, cancel it, wait for it to finish. The workers' side is lifecycle.ts.
import type { Queue } from 'bullmq';
import type { JobPayload } from '../../contracts/job.js';
import { isTerminal, type JobView } from '../../contracts/job-view.js';
import { jobProblems, PUBLIC_DETAIL } from '../../contracts/problem.js';
import { BullmqAddTemplate } from '../redis/bullmq-add.js';
import { runScript, submitJob, type SubmitJobInput } from '../redis/scripts.js';
import { newJobView, newRecordFields } from './job-record.js';
import { liveHeartbeat } from './heartbeat.js';
import { TerminalWaiter } from './terminal-waiter.js';
import type { JobTransitions } from './transitions.js';

export class JobExistsError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} already exists`);
  }
}

/** What a submit is checked against: the key's rate-limit window, its job quota, its Idempotency-Key. */
export type Admission = Pick<SubmitJobInput, 'rate' | 'quota' | 'idempotency'>;

/** A submit's outcome; `count` is the request's count in its rate-limit window. */
export type Submitted = { count: number } & (
  | { outcome: 'created'; view: JobView }
  | { outcome: 'rate-limited' }
  | { outcome: 'idempotency-key-taken'; prior: string }
  | { outcome: 'job-exists' }
  | { outcome: 'quota-full'; active: number }
);

export interface Jobs {
  /** Counts the request and, when the rate limit, the quota and the Idempotency-Key allow, creates the job
   *  (record status queued, BullMQ entry) and remembers the key; a refusal changes nothing but the count. */
  submit(payload: JobPayload, admission: Admission): Promise<Submitted>;
  /** The job, or null when unknown or past retention. A queued job past its deadline is expired here. */
  get(id: string): Promise<JobView | null>;
  /** Queued: canceled at once. Running: cancel_requested is set and the worker stops at the next stage.
   *  Terminal: unchanged. Null when unknown. */
  cancel(id: string): Promise<JobView | null>;
  /** The job once terminal, or as it is after `ms`; null when unknown. */
  waitForTerminal(id: string, ms: number): Promise<JobView | null>;
  close(): Promise<void>;
}

export function createJobs(t: JobTransitions, queue: Queue, retentionS: number): Jobs {
  /** A running job whose worker stopped beating reads as retrying at once: BullMQ hands it to another worker
   *  only when its lock expires (WORKER_LOCK_MS), and until then "running" would be untrue. */
  async function workerLost(view: JobView, workerId: string | undefined): Promise<JobView> {
    if (!workerId || (await liveHeartbeat(t.redis, t.prefix, workerId))) return view;
    const retry = { reason: 'worker-lost' as const, detail: PUBLIC_DETAIL.workerStopped, since: new Date().toISOString(), next_attempt_at: null };
    return { ...view, status: 'retrying', retry };
  }

  const waiter = new TerminalWaiter(t.redis, t.keys.terminalChannel);
  let bullmqAdd: Promise<BullmqAddTemplate> | undefined;

  const jobs: Jobs = {
    async submit(payload, admission) {
      const fields = newRecordFields(payload);
      const deadlineMs = Date.parse(payload.deadline_at);
      const flat: string[] = [];
      for (const name in fields) flat.push(name, fields[name]!);
      const bullmq = (await (bullmqAdd ??= BullmqAddTemplate.build(queue, 'perceive'))).inputs(payload.job_id, payload);
      const [count, code, prior] = (await runScript(t.redis, submitJob, {
        ...admission,
        jobId: payload.job_id,
        deadlineMs,
        nowMs: Date.now(),
        job: {
          recordKey: t.keys.job(payload.job_id),
          ttlS: Math.max(0, Math.ceil((deadlineMs - Date.now()) / 1000)) + retentionS,
          fields: flat,
          bullmq,
        },
      })) as [number, number, string?];
      switch (code) {
        case -1: return { count, outcome: 'created', view: newJobView(payload) };
        case -2: return { count, outcome: 'rate-limited' };
        case -3: return { count, outcome: 'idempotency-key-taken', prior: prior! };
        case -4: return { count, outcome: 'job-exists' };
        default: return { count, outcome: 'quota-full', active: code };
      }
    },

    async get(id) {
      const record = await t.read(id);
      if (!record) return null;
      const { view, fields } = record;
      if (view.status === 'queued' && Date.parse(view.deadline_at) < Date.now()) {
        return (await t.expire(id, view.deadline_at))?.view ?? null;
      }
      return view.status === 'running' ? workerLost(view, fields.worker_id) : view;
    },

    async cancel(id) {
      // A job between attempts is canceled at once too; its delayed queue entry is dropped with it.
      const r = await t.finish(id, ['queued', 'retrying'], 'canceled', { error: JSON.stringify(jobProblems.canceledByUser()), cancel_requested: '1' });
      if (!r || r.applied || r.view.status !== 'running') return r?.view ?? null;
      const flagged = await t.apply(id, { from: ['running'], set: { cancel_requested: '1' } });
      return flagged?.view ?? null;
    },

    async waitForTerminal(id, ms) {
      const first = await jobs.get(id);
      if (!first || isTerminal(first.status) || ms <= 0) return first;
      await waiter.wait(id, ms, async () => {
        const v = await t.read(id);
        return !v || isTerminal(v.view.status);
      });
      return jobs.get(id);
    },

    close: () => waiter.close(),
  };
  return jobs;
}

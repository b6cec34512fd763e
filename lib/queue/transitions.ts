// Status changes of job records, shared by the gateway's jobs API (cancel, expiry on read) and the workers'
// lifecycle. Every change is one atomic script (transitionJob-3.lua) that applies only from the allowed
// statuses; a terminal change publishes on the terminal channel, counts the outcome, drops a queued job's
// BullMQ entry and tells the event hook, which is how webhooks are enqueued without the queue layer
// knowing about them (runtime.ts wires the hook).
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobStatus, JobView } from '../../contracts/job-view.js';
import { jobProblems } from '../../contracts/problem.js';
import type { WebhookEvent } from '../../contracts/webhook.js';
import type { Logger } from '../log.js';
import { runScript, transitionJob, type TransitionSpec } from '../redis/scripts.js';
import { pairsToFields, recordToView } from './job-record.js';
import { redisKeys } from './keys.js';

/** Called once per event a job reaches (job.started, then one terminal event). */
export type JobEventHook = (view: JobView, event: WebhookEvent) => Promise<void>;

export interface Transitioned {
  /** False when the job was no longer in a status this change applies to (someone else finished it). */
  applied: boolean;
  view: JobView;
}

export type TerminalStatus = Extract<JobStatus, 'succeeded' | 'failed' | 'canceled' | 'expired'>;

/** Every terminal status sends its one terminal event. */
const TERMINAL_EVENT: Record<TerminalStatus, WebhookEvent> = {
  succeeded: 'job.succeeded',
  failed: 'job.failed',
  canceled: 'job.canceled',
  expired: 'job.expired',
};

export interface TransitionOptions {
  redis: Redis;
  /** The perception queue: a queued job that ends has its entry removed. */
  queue: Queue;
  prefix: string;
  /** Seconds a finished job record is kept (JOB_RETENTION_S). */
  retentionS: number;
  onEvent: JobEventHook;
  log?: Logger;
}

export class JobTransitions {
  readonly keys: ReturnType<typeof redisKeys>;

  constructor(private readonly o: TransitionOptions) {
    this.keys = redisKeys(o.prefix);
  }

  get redis(): Redis {
    return this.o.redis;
  }

  get prefix(): string {
    return this.o.prefix;
  }

  emit(view: JobView, event: WebhookEvent): Promise<void> {
    return this.o.onEvent(view, event);
  }

  /** Applies `spec`; also returns the record's raw fields (some, like waiting_since, are not in the view). */
  async apply(id: string, spec: TransitionSpec): Promise<(Transitioned & { previous: string; fields: Record<string, string> }) | null> {
    const reply = (await runScript(this.o.redis, transitionJob, {
      recordKey: this.keys.job(id),
      attemptsKey: this.keys.webhookAttempts(id),
      outcomesKey: this.keys.metricJobOutcomes,
      jobId: id,
      spec,
    })) as [number, string?, string[]?, string[]?];
    if (reply[0] === -1) return null;
    const [applied, previous, flat, attempts] = reply;
    const fields = pairsToFields(flat!);
    return { applied: applied === 1, previous: previous!, fields, view: recordToView(fields, attempts!) };
  }

  /** Moves a job to a terminal status and does what follows from it: wake waiters, count, event. */
  async finish(id: string, from: JobStatus[], to: TerminalStatus, set: Record<string, string>): Promise<Transitioned | null> {
    const r = await this.apply(id, {
      from,
      to,
      set: { ...set, finished_at: new Date().toISOString() },
      ttl: this.o.retentionS,
      publish: this.keys.terminalChannel,
      count: to,
    });
    if (!r) return null;
    if (r.applied) {
      await this.emit(r.view, TERMINAL_EVENT[to]);
      // The queue entry is only transport; drop it so a queued-then-canceled job is never picked up.
      if (r.previous === 'queued' || r.previous === 'retrying') await this.removeQueueEntry(id);
    }
    return { applied: r.applied, view: r.view };
  }

  /** queued -> expired, for a record already read (its deadline names the problem). */
  expire(id: string, deadlineAt: string): Promise<Transitioned | null> {
    return this.finish(id, ['queued'], 'expired', { error: JSON.stringify(jobProblems.deadlineExceeded(deadlineAt)) });
  }

  /** The job's view and its record's raw fields (some, like worker_id, are not in the view). */
  async read(id: string): Promise<{ view: JobView; fields: Record<string, string> } | null> {
    const res = await this.o.redis.multi().hgetall(this.keys.job(id)).lrange(this.keys.webhookAttempts(id), 0, -1).exec();
    if (!res) throw new Error(`job ${id}: Redis transaction aborted`);
    const [[e1, fields], [e2, attempts]] = res as [[Error | null, Record<string, string>], [Error | null, string[]]];
    if (e1 || e2) throw e1 ?? e2;
    if (!fields || !fields.status) return null;
    return { view: recordToView(fields, attempts), fields };
  }

  private async removeQueueEntry(id: string): Promise<void> {
    try {
      await this.o.queue.remove(id);
    } catch (e) {
      // An entry locked by a worker cannot be removed; that worker sees the terminal record and skips it.
      this.o.log?.debug({ job_id: id, err: e }, 'queue entry not removed');
    }
  }
}

// Queue and worker tuning, parsed from the environment with zod (the service-wide settings such as
// REDIS_URL, JOB_RETENTION_S or WEBHOOK_MAX_ATTEMPTS live in lib/config.ts). Tests shorten these.
import { z } from 'zod';

const ms = (def: number) => z.coerce.number().int().positive().default(def);

const Env = z.object({
  /** Prefix of every Redis key: BullMQ queues, job records, heartbeats, metrics. A `{hash tag}` form keeps every
   *  key in one slot, as cluster-mode Redis (MemoryDB) requires for BullMQ's multi-key scripts. */
  QUEUE_PREFIX: z.string().regex(/^(\{[A-Za-z0-9_.-]{1,30}\}|[A-Za-z0-9_.-]{1,32})$/).default('mvp'),
  /** Processing attempts for transient failures (storage, network); bad input is never retried. */
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(4),
  /** First retry delay of a perception job; doubles per attempt. */
  JOB_BACKOFF_MS: ms(2_000),
  /** How long a job may wait for storage that does not answer (within its deadline) before it fails; waiting
   *  spends none of its attempts. Retries start at JOB_BACKOFF_MS and double up to STORAGE_RETRY_MAX_MS. */
  STORAGE_WAIT_MS: ms(15 * 60_000),
  STORAGE_RETRY_MAX_MS: ms(30_000),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /** A job whose lock is not renewed for this long counts as stalled and is handed to another worker (the lock
   *  is renewed on the event loop, which inference never blocks: it runs in a worker thread). */
  WORKER_LOCK_MS: ms(10_000),
  WORKER_STALLED_INTERVAL_MS: ms(5_000),
  /** Times a job may stall (its worker died) before it fails. */
  WORKER_MAX_STALLED: z.coerce.number().int().min(0).max(10).default(2),
  /** A live worker refreshes its heartbeat this often; readiness, and the job view of its running jobs, trust
   *  it for 3 intervals. */
  HEARTBEAT_MS: ms(2_000),
  /** Webhook retries: exponential from BASE, capped at MAX, with jitter (defaults spread 12 attempts over 4–8 h). */
  WEBHOOK_BACKOFF_BASE_MS: ms(30_000),
  WEBHOOK_BACKOFF_MAX_MS: ms(2 * 3600_000),
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
});

export interface QueueSettings {
  prefix: string;
  jobAttempts: number;
  jobBackoffMs: number;
  storageWaitMs: number;
  storageRetryMaxMs: number;
  workerConcurrency: number;
  lockMs: number;
  stalledIntervalMs: number;
  maxStalled: number;
  heartbeatMs: number;
  webhookBackoffBaseMs: number;
  webhookBackoffMaxMs: number;
  webhookConcurrency: number;
}

export function loadQueueSettings(env: Record<string, string | undefined> = process.env): QueueSettings {
  const r = Env.safeParse(env);
  if (!r.success) {
    throw new Error(`invalid queue settings: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = r.data;
  return {
    prefix: e.QUEUE_PREFIX,
    jobAttempts: e.JOB_ATTEMPTS,
    jobBackoffMs: e.JOB_BACKOFF_MS,
    storageWaitMs: e.STORAGE_WAIT_MS,
    storageRetryMaxMs: e.STORAGE_RETRY_MAX_MS,
    workerConcurrency: e.WORKER_CONCURRENCY,
    lockMs: e.WORKER_LOCK_MS,
    stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
    maxStalled: e.WORKER_MAX_STALLED,
    heartbeatMs: e.HEARTBEAT_MS,
    webhookBackoffBaseMs: e.WEBHOOK_BACKOFF_BASE_MS,
    webhookBackoffMaxMs: e.WEBHOOK_BACKOFF_MAX_MS,
    webhookConcurrency: e.WEBHOOK_CONCURRENCY,
  };
}

// Job view v1: the job as the API shows it (GET /v1/jobs/{id}, webhook bodies). The queue layer builds it from
// the job record in Redis (lib/queue/job-record.ts); the gateway's OpenAPI document uses this schema.
import { z } from 'zod';
import { STAGES } from './job.js';
import { Problem } from './problem.js';
import { PerceptionResult } from './result.js';
import { Task } from './task.js';
import { WebhookAttempt, WebhookEvent, webhookEnvelope } from './webhook.js';

export const JOB_VIEW_SCHEMA_VERSION = '1';

/** retrying: between attempts, after a backing service did not answer, a worker was lost or processing failed
 *  (`retry` says which and when the next attempt is due). */
export const JOB_STATUSES = ['queued', 'running', 'retrying', 'succeeded', 'failed', 'canceled', 'expired'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'canceled', 'expired'];
export const isTerminal = (s: JobStatus): boolean => TERMINAL_STATUSES.includes(s);

export const Stage = z.enum(STAGES);

export const RetryReason = z.enum([
  'storage-unavailable', // storage did not answer: the job waits for it (within its deadline) without spending attempts
  'worker-lost', // the worker running it stopped beating; another worker takes it over
  'processing-failed', // an attempt failed; the next one is due at next_attempt_at
]);
export type RetryReason = z.infer<typeof RetryReason>;

export const Retry = z.object({
  reason: RetryReason,
  /** What happened, in the API's terms. */
  detail: z.string(),
  /** When the job began waiting for this reason. */
  since: z.string(),
  /** When the next attempt is due (at the latest); null when another worker takes the job as soon as BullMQ
   *  sees its lock expire. */
  next_attempt_at: z.string().nullable(),
});
export type Retry = z.infer<typeof Retry>;

export const JobView = z.object({
  id: z.string(),
  key_id: z.string(),
  request_id: z.string(),
  status: JobStatus,
  /** The stage running now, or the last one reached. */
  stage: Stage.nullable(),
  /** 0..1, by stages completed. */
  progress: z.number().min(0).max(1),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  deadline_at: z.string(),
  /** Set when a cancel was asked for while the job ran; the worker stops at the next stage. */
  cancel_requested: z.boolean(),
  /** Processing attempts started (retries after transient failures and stalled-job recovery count). */
  attempts: z.number().int().nonnegative(),
  /** Set while status is retrying. */
  retry: Retry.nullable(),
  timings_ms: z.record(z.string(), z.number().nonnegative()),
  error: Problem.nullable(),
  /** Storage key of the full result JSON once succeeded. */
  result_key: z.string().nullable(),
  /** The result itself when it is small enough to inline (RESULT_INLINE_MAX_BYTES). */
  result: PerceptionResult.nullable(),
  model: PerceptionResult.shape.model.nullable(),
  provider: PerceptionResult.shape.provider.nullable(),
  input: z.object({
    image: z.object({ content_type: z.string(), width: z.number(), height: z.number(), bytes: z.number() }),
    tasks: z.array(Task),
    caption: z.boolean(),
  }),
  webhook: z
    .object({ url: z.string(), events: z.array(WebhookEvent), attempts: z.array(WebhookAttempt) })
    .nullable(),
  metadata: z.record(z.string(), z.string()).nullable(),
});
export type JobView = z.infer<typeof JobView>;

/** The body of every webhook delivery (contracts/webhook.ts). */
export const WebhookBody = webhookEnvelope(JobView.omit({ webhook: true }));
export type WebhookBody = z.infer<typeof WebhookBody>;

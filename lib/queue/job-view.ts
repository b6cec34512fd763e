// The job as the API shows it (GET /v1/jobs/{id}, webhook bodies). Built from the job record in Redis
// (job-record.ts); zod here so the gateway can use the same schema for its OpenAPI document.
import { z } from 'zod';
import { STAGES, WebhookEvent } from '../../contracts/job.js';
import { Task } from '../../contracts/task.js';
import { PerceptionResult } from '../../contracts/result.js';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled', 'expired'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'canceled', 'expired'];
export const isTerminal = (s: JobStatus): boolean => TERMINAL_STATUSES.includes(s);

/** RFC 9457 problem details; `errors` carries one JSON pointer per invalid field. */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  errors: z.array(z.object({ pointer: z.string(), detail: z.string() })).optional(),
});
export type Problem = z.infer<typeof Problem>;

export const WebhookAttemptOutcome = z.enum([
  'delivered', // 2xx
  'failed', // non-2xx other than 410, a redirect, a timeout or a network error: retried
  'gone', // 410: the receiver asked us to stop
  'refused', // SSRF guard or URL policy refused the target: not retried
]);

export const WebhookAttempt = z.object({
  event: WebhookEvent,
  webhook_id: z.string(),
  attempt: z.number().int().positive(),
  at: z.string(),
  outcome: WebhookAttemptOutcome,
  status_code: z.number().int().nullable(),
  duration_ms: z.number().nonnegative(),
  error: z.string().optional(),
  /** When the next attempt is due, if one will be made. */
  next_attempt_at: z.string().optional(),
});
export type WebhookAttempt = z.infer<typeof WebhookAttempt>;

export const Stage = z.enum(STAGES);
export type WebhookEventName = z.infer<typeof WebhookEvent>;

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

// Job payload v1: what the gateway (src/) puts on the perception queue for the workers (workers/).
// A job holds references, never image bytes. Bump JOB_SCHEMA_VERSION on any breaking change;
// workers reject versions they do not know with an UnrecoverableError.
import { z } from 'zod';
import { Task } from './task.js';
import { WebhookEvent } from './webhook.js';

export const JOB_SCHEMA_VERSION = 1;
export const PERCEPTION_QUEUE = 'perception';
export const WEBHOOK_QUEUE = 'webhooks';

export const JobPayload = z.strictObject({
  v: z.literal(JOB_SCHEMA_VERSION),
  job_id: z.string(),
  /** Non-secret id of the API key that created the job (for quotas and webhook secrets). */
  key_id: z.string(),
  request_id: z.string(),
  image: z.strictObject({
    storage_key: z.string(),
    content_type: z.string(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    bytes: z.number().int().positive(),
  }),
  tasks: z.array(Task).min(1),
  caption: z.boolean(),
  created_at: z.string(),
  deadline_at: z.string(),
  webhook: z.strictObject({ url: z.string().url(), events: z.array(WebhookEvent).min(1) }).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
});
export type JobPayload = z.infer<typeof JobPayload>;

/** Pipeline stages, in order; progress and per-stage timings are reported under these names. */
export const STAGES = ['fetch', 'preprocess', 'vision', 'language', 'perception', 'postprocess', 'store'] as const;
export type Stage = (typeof STAGES)[number];
/** The stages a perception worker batches across jobs (dynamic batching; workers/pipeline/batcher.ts). */
export const BATCHED_STAGES = ['vision', 'language', 'perception'] as const satisfies readonly Stage[];
export type BatchedStage = (typeof BATCHED_STAGES)[number];

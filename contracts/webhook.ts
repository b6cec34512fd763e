// Webhook contract v1: the events a job can be subscribed to, the body every delivery carries (Standard
// Webhooks; the headers are webhook-id, webhook-timestamp, webhook-signature) and one delivery attempt as the
// job view lists it.
import { z } from 'zod';

export const WEBHOOK_SCHEMA_VERSION = '1';

/** job.started once a worker begins; then exactly one terminal event: succeeded, failed, canceled or expired (the
 *  deadline passed while queued). */
export const WEBHOOK_EVENTS = ['job.started', 'job.succeeded', 'job.failed', 'job.canceled', 'job.expired'] as const;
export const WebhookEvent = z.enum(WEBHOOK_EVENTS);
export type WebhookEvent = z.infer<typeof WebhookEvent>;

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

/** The body of a delivery: `data` is the job view (job-view.ts) without its `webhook` section, as it was when
 *  the event happened. Every retry sends the same bytes under the same webhook-id. */
export const webhookEnvelope = <T extends z.ZodType>(data: T) =>
  z.object({ type: WebhookEvent, timestamp: z.string(), data });

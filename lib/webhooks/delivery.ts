// A webhook delivery as it travels on the webhook queue. The body is fixed when the event happens, so every
// retry sends the same bytes under the same webhook-id; only webhook-timestamp and the signature change.
import type { Queue } from 'bullmq';
import type { JobView } from '../../contracts/job-view.js';
import type { WebhookEvent } from '../../contracts/webhook.js';

export interface WebhookDelivery {
  job_id: string;
  key_id: string;
  event: WebhookEvent;
  /** Standard Webhooks `webhook-id`: stable across retries, unique per job and event. */
  webhook_id: string;
  url: string;
  body: string;
}

export const webhookId = (jobId: string, event: WebhookEvent): string => `msg_${jobId}_${event.replace('.', '_')}`;

/** Enqueues the event when the job subscribed to it. The BullMQ job id is the webhook id, so a job that
 *  runs twice (at-least-once delivery) still sends each event once. */
export async function enqueueWebhook(queue: Queue, view: JobView, event: WebhookEvent): Promise<boolean> {
  if (!view.webhook || !view.webhook.events.includes(event)) return false;
  const { webhook, ...data } = view;
  const id = webhookId(view.id, event);
  const delivery: WebhookDelivery = {
    job_id: view.id,
    key_id: view.key_id,
    event,
    webhook_id: id,
    url: webhook.url,
    body: JSON.stringify({ type: event, timestamp: new Date().toISOString(), data }),
  };
  await queue.add(event, delivery, { jobId: id });
  return true;
}

// The webhook delivery consumer: signs and sends each queued delivery, records every attempt on the job,
// retries failures on the webhook queue's backoff (backoff.ts), stops on 410 and on refused targets. A 410
// disables the job's endpoint: the job's later events are recorded as refused, not sent. Events are delivered
// each on its own (a retried job.started can arrive after job.succeeded); receivers order them by the job's
// status or the body's `timestamp`.
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { WEBHOOK_QUEUE } from '../../contracts/job.js';
import type { Logger } from '../../lib/log.js';
import { MetricsRecorder } from '../../lib/metrics.js';
import type { Allowlist } from '../../lib/net/ssrf.js';
import type { WebhookAttempt } from '../../contracts/webhook.js';
import type { JobLifecycle, QueueSettings } from '../../lib/queue/index.js';
import { webhookBackoffStrategy, webhookRetryDelay } from './backoff.js';
import type { WebhookDelivery } from '../../lib/webhooks/delivery.js';
import { sendWebhook } from './send.js';

export interface WebhookWorkerOptions {
  /** A connection created with createRedis(url, 'worker'). */
  redis: Redis;
  settings: QueueSettings;
  lifecycle: JobLifecycle;
  /** The whsec_ secret of an API key id, or undefined for an unknown key. */
  secretFor(keyId: string): string | undefined;
  allowlist: Allowlist;
  timeoutMs: number;
  log: Logger;
}

export function startWebhookWorker(o: WebhookWorkerOptions): Worker<WebhookDelivery, WebhookAttempt['outcome']> {
  const metrics = new MetricsRecorder(o.redis, o.settings.prefix);
  const { webhookBackoffBaseMs: base, webhookBackoffMaxMs: max } = o.settings;

  const process = async (job: Job<WebhookDelivery>): Promise<WebhookAttempt['outcome']> => {
    const d = job.data;
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const log = o.log.child({ job_id: d.job_id, webhook_id: d.webhook_id, event: d.event, attempt });
    const secret = o.secretFor(d.key_id);
    const refused = (error: string) => ({ outcome: 'refused' as const, status_code: null, duration_ms: 0, error });
    const result = !secret
      ? refused(`no webhook secret for key ${d.key_id}`)
      : (await o.lifecycle.webhookDisabled(d.job_id))
        ? refused('the receiver answered 410 Gone to an earlier event of this job: no more events are sent')
        : await sendWebhook({ url: d.url, webhookId: d.webhook_id, body: d.body, secret, allowlist: o.allowlist, timeoutMs: o.timeoutMs });
    if (result.outcome === 'gone') await o.lifecycle.disableWebhook(d.job_id);
    const retry = result.outcome === 'failed' && attempt < maxAttempts;
    await o.lifecycle.recordWebhookAttempt(d.job_id, {
      event: d.event,
      webhook_id: d.webhook_id,
      attempt,
      at: new Date().toISOString(),
      ...result,
      ...(retry ? { next_attempt_at: new Date(Date.now() + webhookRetryDelay(d.webhook_id, attempt, base, max)).toISOString() } : {}),
    });
    await metrics.webhookOutcome(result.outcome);
    log.info({ outcome: result.outcome, status_code: result.status_code, duration_ms: result.duration_ms }, 'webhook attempt');
    if (result.outcome === 'delivered') return result.outcome;
    if (result.outcome === 'failed') throw new Error(result.error);
    throw new UnrecoverableError(result.error);
  };

  const worker = new Worker<WebhookDelivery, WebhookAttempt['outcome']>(WEBHOOK_QUEUE, process, {
    connection: o.redis,
    prefix: o.settings.prefix,
    concurrency: o.settings.webhookConcurrency,
    settings: { backoffStrategy: webhookBackoffStrategy(base, max) },
  });
  worker.on('error', (err) => o.log.error({ err }, 'webhook worker error'));
  return worker;
}

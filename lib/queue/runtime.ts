// The queues, the gateway's jobs API and the workers' job lifecycle wired from configuration, the same way in
// every process (gateway, perception worker, webhook worker), so they agree on prefix, retention and webhook
// settings. Here the job events meet the webhook queue: the queue layer only calls its event hook.
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { enqueueWebhook } from '../webhooks/delivery.js';
import { createJobs, type Jobs } from './jobs.js';
import { createJobLifecycle, type JobLifecycle } from './lifecycle.js';
import { createQueues, type Queues } from './queues.js';
import type { QueueSettings } from './settings.js';
import { JobTransitions } from './transitions.js';

export interface QueueRuntime {
  queues: Queues;
  jobs: Jobs;
  lifecycle: JobLifecycle;
  /** Closes the jobs API's subscriber and the queues (not `redis`, which the caller owns). */
  close(): Promise<void>;
}

export interface QueueRuntimeOptions {
  retentionS: number;
  resultInlineMaxBytes: number;
  webhookMaxAttempts: number;
  log?: Logger;
}

export function queueOptions(config: Config, log?: Logger): QueueRuntimeOptions {
  return { retentionS: config.jobRetentionS, resultInlineMaxBytes: config.limits.resultInlineMaxBytes, webhookMaxAttempts: config.webhook.maxAttempts, log };
}

export function openQueueRuntime(redis: Redis, settings: QueueSettings, o: QueueRuntimeOptions): QueueRuntime {
  const queues = createQueues(redis, settings, { retentionS: o.retentionS, webhookMaxAttempts: o.webhookMaxAttempts, log: o.log });
  const transitions = new JobTransitions({
    redis,
    queue: queues.perception,
    prefix: settings.prefix,
    retentionS: o.retentionS,
    onEvent: async (view, event) => {
      await enqueueWebhook(queues.webhooks, view, event);
    },
    log: o.log,
  });
  const jobs = createJobs(transitions, queues.perception, o.retentionS);
  return {
    queues,
    jobs,
    lifecycle: createJobLifecycle(transitions, o.resultInlineMaxBytes),
    async close() {
      await jobs.close();
      await queues.close();
    },
  };
}

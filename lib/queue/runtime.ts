// The queues and the job store wired from configuration, the same way in every process (gateway, perception
// worker, webhook worker), so they always agree on prefix, retention and webhook settings.
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createJobStore, type JobStore } from './job-store.js';
import { createQueues, type Queues } from './queues.js';
import type { QueueSettings } from './settings.js';

export interface QueueRuntime {
  queues: Queues;
  store: JobStore;
}

export function openQueueRuntime(redis: Redis, config: Config, settings: QueueSettings, log: Logger): QueueRuntime {
  const queues = createQueues(redis, settings, {
    retentionS: config.jobRetentionS,
    webhookMaxAttempts: config.webhook.maxAttempts,
    log,
  });
  const store = createJobStore({
    redis,
    queue: queues.perception,
    webhookQueue: queues.webhooks,
    prefix: settings.prefix,
    retentionS: config.jobRetentionS,
    resultInlineMaxBytes: config.limits.resultInlineMaxBytes,
    log,
  });
  return { queues, store };
}

// The two BullMQ queues (contracts/job.ts names them) with their retry and retention defaults.
// BullMQ entries are only the transport: the job as users see it lives in the job record (job-record.ts),
// so finished BullMQ entries are dropped soon; failed ones are kept longer for operators.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { PERCEPTION_QUEUE, WEBHOOK_QUEUE } from '../../contracts/job.js';
import type { QueueSettings } from './settings.js';

export const WEBHOOK_BACKOFF = 'webhook-jitter';

export interface Queues {
  perception: Queue;
  webhooks: Queue;
  close(): Promise<void>;
}

export function createQueues(
  connection: Redis,
  settings: QueueSettings,
  opts: { retentionS: number; webhookMaxAttempts: number; log?: Logger },
): Queues {
  const removeOnComplete = { age: 3600, count: 1000 };
  const removeOnFail = { age: opts.retentionS, count: 10_000 };
  const perception = new Queue(PERCEPTION_QUEUE, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: {
      attempts: settings.jobAttempts,
      backoff: { type: 'exponential', delay: settings.jobBackoffMs, jitter: 0.5 },
      removeOnComplete,
      removeOnFail,
    },
  });
  const webhooks = new Queue(WEBHOOK_QUEUE, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: {
      attempts: opts.webhookMaxAttempts,
      backoff: { type: WEBHOOK_BACKOFF },
      removeOnComplete,
      removeOnFail,
    },
  });
  // Without a listener BullMQ prints every connection error; the connection itself logs outages once (connection.ts).
  for (const q of [perception, webhooks]) q.on('error', (err) => opts.log?.debug({ err: err.message, queue: q.name }, 'queue error'));
  return {
    perception,
    webhooks,
    async close() {
      await Promise.all([perception.close(), webhooks.close()]);
    },
  };
}

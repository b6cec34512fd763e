// A queue layer per test file: its own key prefix on the shared test Redis, short retry settings, and a
// job store wired like the gateway's. Everything is real Redis; nothing is mocked.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createLogger } from '../../lib/log.js';
import { createJobStore, createQueues, createRedis, loadQueueSettings, type JobStore, type Queues, type QueueSettings } from '../../lib/queue/index.js';

export function redisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the tests through vitest (test/setup/global.ts)');
  return url;
}

/** Settings a test worker process and the in-test store share; pass `env()` to child processes. */
export function testQueueEnv(prefix = `t${randomBytes(4).toString('hex')}`): Record<string, string> {
  return {
    QUEUE_PREFIX: prefix,
    JOB_ATTEMPTS: '4',
    JOB_BACKOFF_MS: '100',
    WORKER_LOCK_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    WORKER_MAX_STALLED: '2',
    HEARTBEAT_MS: '500',
    WEBHOOK_BACKOFF_BASE_MS: '50',
    WEBHOOK_BACKOFF_MAX_MS: '200',
  };
}

export interface QueueEnv {
  env: Record<string, string>;
  settings: QueueSettings;
  redis: Redis;
  queues: Queues;
  store: JobStore;
  close(): Promise<void>;
}

export function openQueueEnv(opts: { url?: string; env?: Record<string, string>; retentionS?: number } = {}): QueueEnv {
  const env = opts.env ?? testQueueEnv();
  const settings = loadQueueSettings(env);
  const redis = createRedis(opts.url ?? redisUrl(), 'worker', createLogger({ level: 'silent' }));
  const queues = createQueues(redis, settings, { retentionS: opts.retentionS ?? 3600, webhookMaxAttempts: 5 });
  const store = createJobStore({
    redis,
    queue: queues.perception,
    webhookQueue: queues.webhooks,
    prefix: settings.prefix,
    retentionS: opts.retentionS ?? 3600,
    resultInlineMaxBytes: 64 * 1024,
  });
  return {
    env,
    settings,
    redis,
    queues,
    store,
    async close() {
      await store.close();
      await queues.close();
      redis.disconnect();
    },
  };
}

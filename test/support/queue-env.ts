// A queue layer per test file: its own key prefix on the shared test Redis, short retry settings, the gateway's
// jobs API and the workers' lifecycle wired as the processes wire them. Jobs are created through the gateway's
// own submit (the script POST /v1/perceive runs, with the gateway's rate-limit and quota keys for a test API
// key). Everything is real Redis; nothing is mocked.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JobPayload } from '../../contracts/job.js';
import type { JobView } from '../../contracts/job-view.js';
import { ApiKeyConfig, hashApiKey } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { JobExistsError, loadQueueSettings, openQueueRuntime, redisKeys, type Jobs, type JobLifecycle, type Queues, type QueueSettings } from '../../lib/queue/index.js';
import { createRedis } from '../../lib/redis/index.js';
import { Quota } from '../../src/admission/quota.js';
import { RateLimiter } from '../../src/admission/rate-limit.js';

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
    STORAGE_RETRY_MAX_MS: '300',
    WORKER_LOCK_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    WORKER_MAX_STALLED: '2',
    HEARTBEAT_MS: '500',
    WEBHOOK_BACKOFF_BASE_MS: '50',
    WEBHOOK_BACKOFF_MAX_MS: '200',
  };
}

/** The API key test jobs are submitted under (makePayload's key_id): limits no test reaches. */
const TEST_KEY = ApiKeyConfig.parse({
  id: 'test-key',
  key_sha256: hashApiKey('sk-test-0123456789'),
  webhook_secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0',
  rate_limit: 1_000_000_000,
  max_concurrent_jobs: 1_000_000_000,
});

export interface QueueEnv {
  env: Record<string, string>;
  settings: QueueSettings;
  redis: Redis;
  queues: Queues;
  jobs: Jobs;
  lifecycle: JobLifecycle;
  /** Creates the job as POST /v1/perceive does once the request is valid; JobExistsError on a reused id. */
  submit(payload: JobPayload): Promise<JobView>;
  close(): Promise<void>;
}

export function openQueueEnv(opts: { url?: string; env?: Record<string, string>; retentionS?: number } = {}): QueueEnv {
  const env = opts.env ?? testQueueEnv();
  const settings = loadQueueSettings(env);
  const redis = createRedis(opts.url ?? redisUrl(), 'worker', createLogger({ level: 'silent' }));
  const runtime = openQueueRuntime(redis, settings, { retentionS: opts.retentionS ?? 3600, resultInlineMaxBytes: 64 * 1024, webhookMaxAttempts: 5 });
  const gatewayPrefix = `${settings.prefix}:gw`;
  const limiter = new RateLimiter(redis, gatewayPrefix);
  const quota = new Quota(gatewayPrefix, redisKeys(settings.prefix).job(''));
  return {
    env,
    settings,
    redis,
    queues: runtime.queues,
    jobs: runtime.jobs,
    lifecycle: runtime.lifecycle,
    async submit(payload) {
      const key = { ...TEST_KEY, id: payload.key_id };
      const r = await runtime.jobs.submit(payload, { rate: limiter.window(key), quota: quota.of(key) });
      if (r.outcome === 'job-exists') throw new JobExistsError(payload.job_id);
      if (r.outcome !== 'created') throw new Error(`test submit refused: ${r.outcome}`);
      return r.view;
    },
    async close() {
      await runtime.close();
      redis.disconnect();
    },
  };
}

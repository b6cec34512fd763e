// Wires the gateway's dependencies from configuration: one Redis client connection, the queues, the jobs
// API, the blob store and the metrics registry. server.ts, the benchmark and the tests use this, so they
// all run the same wiring.
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { createMetricsRegistry } from '../lib/metrics.js';
import { openQueueRuntime, queueOptions, type Queues, type QueueSettings } from '../lib/queue/index.js';
import { coalesceWrites, createRedis } from '../lib/redis/index.js';
import { createBlobStore, type BlobStore } from '../lib/storage/index.js';
import type { AppDeps } from './context.js';

export interface GatewayDeps {
  deps: AppDeps;
  queues: Queues;
  close(): Promise<void>;
}

export function openGatewayDeps(opts: {
  config: Config;
  settings: QueueSettings;
  log: Logger;
  /** Defaults to the configured store (tests pass one bound to their bucket). */
  store?: BlobStore;
  /** Node process metrics on /metrics (off in tests that build several apps in one process). */
  defaultMetrics?: boolean;
}): GatewayDeps {
  const { config, settings, log } = opts;
  const redis = createRedis(config.redisUrl, 'client');
  // Commands issued in the same event-loop turn (by one request, or by concurrent requests) go out as one
  // write: under load this cuts the syscalls per accepted job several-fold.
  coalesceWrites(redis);
  const runtime = openQueueRuntime(redis, settings, queueOptions(config, log));
  const { queues, jobs } = runtime;
  const registry = createMetricsRegistry({
    redis,
    prefix: settings.prefix,
    queues: [queues.perception, queues.webhooks],
    defaultMetrics: opts.defaultMetrics,
  });
  return {
    deps: { config, redis, store: opts.store ?? createBlobStore(config.storage), jobs, log, registry, keyPrefix: settings.prefix },
    queues,
    async close() {
      await runtime.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

// Publishes the perception queue's depth to CloudWatch so ECS can scale GPU workers on it (down to zero)
// and alarms can watch it. Runs as a scheduled Lambda (every minute, infra/) and writes one CloudWatch
// Embedded Metric Format record to stdout: Lambda's log pipeline turns it into metrics, no SDK or
// PutMetricData permission needed. Kubernetes does not need this: KEDA reads the same numbers from the
// gateway's /metrics (mvp_queue_jobs) through Prometheus.
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig } from '../lib/config.js';
import { createQueues, listLiveWorkers, loadQueueSettings, redisKeys } from '../lib/queue/index.js';
import { createRedis } from '../lib/redis/index.js';

export const METRICS_NAMESPACE_DEFAULT = 'MvpLm';

export interface QueueMetrics {
  /** waiting + prioritized + active: the work that needs a worker now (what scaling targets). */
  Backlog: number;
  /** waiting + prioritized: accepted and not started. */
  Waiting: number;
  Active: number;
  /** Age of the oldest job not yet started; 0 when none waits. */
  OldestWaitingAgeSeconds: number;
  /** Workers with a fresh heartbeat and a loaded model. */
  LiveWorkers: number;
  /** Jobs that reached `failed` since the previous publication. */
  FailedJobs: number;
}

export async function collectQueueMetrics(redis: Redis, perception: Queue, prefix: string, now = Date.now()): Promise<QueueMetrics> {
  const keys = redisKeys(prefix);
  const [counts, oldest, live, failedTotal] = await Promise.all([
    perception.getJobCounts('waiting', 'prioritized', 'active'),
    Promise.all([perception.getJobs(['waiting'], 0, 0, true), perception.getJobs(['prioritized'], 0, 0, true)]),
    listLiveWorkers(redis, prefix),
    redis.hget(keys.metricJobOutcomes, 'failed'),
  ]);
  const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0);
  const active = counts.active ?? 0;
  const stamps = oldest.flat().filter(Boolean).map((j) => j.timestamp);
  // Failures are a cluster-wide counter in Redis; the delta since the last run is remembered there too, so
  // concurrent or restarted publishers never count a failure twice.
  const total = Number(failedTotal ?? 0);
  const previous = await redis.set(`${prefix}:metrics:published-failed`, String(total), 'GET');
  return {
    Backlog: waiting + active,
    Waiting: waiting,
    Active: active,
    OldestWaitingAgeSeconds: stamps.length ? Math.max(0, (now - Math.min(...stamps)) / 1000) : 0,
    LiveWorkers: live.length,
    FailedJobs: previous === null ? 0 : Math.max(0, total - Number(previous)),
  };
}

/** One CloudWatch Embedded Metric Format record (dimension Queue). */
export function toEmf(m: QueueMetrics, opts: { namespace: string; queue: string; timestamp: number }): string {
  const units: Record<keyof QueueMetrics, string> = {
    Backlog: 'Count', Waiting: 'Count', Active: 'Count', OldestWaitingAgeSeconds: 'Seconds', LiveWorkers: 'Count', FailedJobs: 'Count',
  };
  return JSON.stringify({
    _aws: {
      Timestamp: opts.timestamp,
      CloudWatchMetrics: [{
        Namespace: opts.namespace,
        Dimensions: [['Queue']],
        Metrics: Object.entries(units).map(([Name, Unit]) => ({ Name, Unit })),
      }],
    },
    Queue: opts.queue,
    ...m,
  });
}

let conn: { redis: Redis; perception: Queue; prefix: string } | null = null;

/** Lambda entry (handler name `queue-metrics-lambda.handler`), invoked by an EventBridge schedule. */
export async function handler(): Promise<QueueMetrics> {
  if (!conn) {
    const config = loadConfig();
    const settings = loadQueueSettings();
    const redis = createRedis(config.redisUrl, 'client');
    const { perception } = createQueues(redis, settings, { retentionS: config.jobRetentionS, webhookMaxAttempts: config.webhook.maxAttempts });
    conn = { redis, perception, prefix: settings.prefix };
  }
  const now = Date.now();
  const m = await collectQueueMetrics(conn.redis, conn.perception, conn.prefix, now);
  console.log(toEmf(m, { namespace: process.env.METRICS_NAMESPACE ?? METRICS_NAMESPACE_DEFAULT, queue: conn.perception.name, timestamp: now }));
  return m;
}

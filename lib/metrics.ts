// Prometheus metrics for the gateway's /metrics.
//
// Queue depth is read from BullMQ at scrape time. Stage durations, job outcomes and webhook outcomes happen
// in the worker processes; they are counted in Redis (one MULTI per event) and read back at scrape time, so
// the gateway's /metrics shows the whole cluster without scraping every worker. The values are therefore
// cluster-wide: with several gateway replicas aggregate them with max(), not sum().
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Registry, collectDefaultMetrics, type MetricValueWithName } from 'prom-client';
import { BATCHED_STAGES, STAGES } from '../contracts/job.js';
import { listLiveWorkers } from './queue/heartbeat.js';
import { redisKeys } from './queue/keys.js';

export const STAGE_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Dynamic batching on the perception workers: items per batch, and how long a batch's oldest item waited. */
export const BATCH_SIZE_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 32, 64];
export const BATCH_WAIT_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
export const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'failed', 'completed'] as const;

/** Writer side, used by worker processes. */
export class MetricsRecorder {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  async stageDuration(stage: string, seconds: number): Promise<void> {
    await this.observe(this.keys.metricStageDuration(stage), STAGE_BUCKETS_S, seconds);
  }

  /** One batch of a pipeline stage: its size and its oldest item's wait. */
  async batch(stage: string, size: number, waitSeconds: number): Promise<void> {
    await this.observe(this.keys.metricBatchSize(stage), BATCH_SIZE_BUCKETS, size);
    await this.observe(this.keys.metricBatchWait(stage), BATCH_WAIT_BUCKETS_S, waitSeconds);
  }

  /** One histogram observation: the bucket it falls in (non-cumulative), count and sum. */
  private async observe(key: string, buckets: readonly number[], value: number): Promise<void> {
    const le = buckets.find((b) => value <= b);
    await this.redis
      .multi()
      .hincrby(key, le === undefined ? '+Inf' : String(le), 1)
      .hincrby(key, 'count', 1)
      .hincrbyfloat(key, 'sum', value)
      .exec();
  }

  async webhookOutcome(outcome: string): Promise<void> {
    await this.redis.hincrby(this.keys.metricWebhookOutcomes, outcome, 1);
  }
}

interface RedisHistogram {
  name: string;
  help: string;
  buckets: readonly number[];
  /** One series per stage, read from the hash `key(stage)`. */
  stages: readonly string[];
  key: (stage: string) => string;
}

/** A histogram whose buckets live in Redis; prom-client's Histogram can only observe in-process, so this
 *  is a metric object of the shape the registry formats (name, help, type, get()). */
function redisHistogram(redis: Redis, h: RedisHistogram) {
  const { name, buckets, stages } = h;
  return {
    name,
    help: h.help,
    type: 'histogram',
    aggregator: 'max',
    async get() {
      const pipe = redis.pipeline();
      for (const s of stages) pipe.hgetall(h.key(s));
      const res = (await pipe.exec()) ?? [];
      const values: MetricValueWithName<string>[] = [];
      stages.forEach((stage, i) => {
        const hash = (res[i]?.[1] ?? {}) as Record<string, string>;
        if (!hash.count) return;
        let cumulative = 0;
        for (const b of buckets) {
          cumulative += Number(hash[String(b)] ?? 0);
          values.push({ metricName: `${name}_bucket`, labels: { stage, le: b }, value: cumulative });
        }
        values.push({ metricName: `${name}_bucket`, labels: { stage, le: '+Inf' }, value: Number(hash.count) });
        values.push({ metricName: `${name}_sum`, labels: { stage }, value: Number(hash.sum ?? 0) });
        values.push({ metricName: `${name}_count`, labels: { stage }, value: Number(hash.count) });
      });
      return { name, help: this.help, type: this.type, aggregator: this.aggregator, values };
    },
  };
}

/** A counter mirrored from a Redis hash of field -> count. */
function redisCounter(registry: Registry, redis: Redis, name: string, help: string, label: string, key: string): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    async collect() {
      const h = await redis.hgetall(key);
      this.reset();
      for (const [field, n] of Object.entries(h)) this.inc({ [label]: field }, Number(n));
    },
  });
}

export interface MetricsOptions {
  redis: Redis;
  prefix: string;
  queues: Queue[];
  /** Node process metrics (event loop lag, heap) of the exposing process. */
  defaultMetrics?: boolean;
}

/** The registry the gateway mounts at /metrics; the gateway registers its own request metrics on it too. */
export function createMetricsRegistry(opts: MetricsOptions): Registry {
  const { redis, prefix, queues } = opts;
  const keys = redisKeys(prefix);
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'mvp_queue_jobs',
    help: 'Jobs per BullMQ queue and state (waiting+prioritized+active is the backlog to scale on)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const counts = await Promise.all(queues.map((q) => q.getJobCounts(...QUEUE_STATES)));
      queues.forEach((q, i) => {
        for (const state of QUEUE_STATES) this.set({ queue: q.name, state }, counts[i]![state] ?? 0);
      });
    },
  });

  new Gauge({
    name: 'mvp_live_workers',
    help: 'Perception workers with a fresh heartbeat (model loaded)',
    registers: [registry],
    async collect() {
      this.set((await listLiveWorkers(redis, prefix)).length);
    },
  });

  const histograms: RedisHistogram[] = [
    { name: 'mvp_job_stage_duration_seconds', help: 'Time jobs spent in each pipeline stage (cluster-wide, counted in Redis by the workers)', buckets: STAGE_BUCKETS_S, stages: STAGES, key: keys.metricStageDuration },
    { name: 'mvp_batch_size', help: 'Items per batch of a batched pipeline stage (images for vision, tasks for language and perception; cluster-wide)', buckets: BATCH_SIZE_BUCKETS, stages: BATCHED_STAGES, key: keys.metricBatchSize },
    { name: 'mvp_batch_wait_seconds', help: "How long each batch's oldest item waited for the batch to start (cluster-wide)", buckets: BATCH_WAIT_BUCKETS_S, stages: BATCHED_STAGES, key: keys.metricBatchWait },
  ];
  for (const h of histograms) registry.registerMetric(redisHistogram(redis, h) as never);
  redisCounter(registry, redis, 'mvp_jobs_finished_total', 'Jobs that reached a terminal status', 'status', keys.metricJobOutcomes);
  redisCounter(
    registry,
    redis,
    'mvp_webhook_deliveries_total',
    'Webhook delivery attempts by outcome (delivered, failed, gone, refused)',
    'outcome',
    keys.metricWebhookOutcomes,
  );
  return registry;
}

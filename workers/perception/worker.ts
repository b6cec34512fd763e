// The perception consumer: a BullMQ worker around the processor, its heartbeat and its shutdown.
// main.ts wires it from the environment; tests start it in-process with their own storage or pipeline.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { PERCEPTION_QUEUE } from '../../contracts/job.js';
import type { Logger } from '../../lib/log.js';
import { MetricsRecorder } from '../../lib/metrics.js';
import { jobProblems as problems, PUBLIC_DETAIL } from '../../contracts/problem.js';
import { startHeartbeat, type JobLifecycle, type QueueSettings } from '../../lib/queue/index.js';
import type { BlobStore } from '../../lib/storage/index.js';
import type { PerceptionPipeline } from '../pipeline/types.js';
import { OverlayRenderer } from './overlay-renderer.js';
import { createPerceptionProcessor, type JobOutcome } from './processor.js';

export interface PerceptionWorkerOptions {
  /** A connection created with createRedis(url, 'worker'). */
  redis: Redis;
  settings: QueueSettings;
  lifecycle: JobLifecycle;
  blobs: BlobStore;
  pipeline: PerceptionPipeline;
  log: Logger;
  /** Render overlay PNGs after each success (default true). */
  overlays?: boolean;
}

export interface PerceptionWorker {
  id: string;
  worker: Worker<unknown, JobOutcome>;
  /** Stops taking jobs, waits for the running ones, then stops the heartbeat. */
  close(): Promise<void>;
}

export async function startPerceptionWorker(opts: PerceptionWorkerOptions): Promise<PerceptionWorker> {
  const { redis, settings, lifecycle, log } = opts;
  const id = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const overlays = opts.overlays === false ? undefined : new OverlayRenderer();
  overlays?.warmUp();
  const processor = createPerceptionProcessor({
    lifecycle,
    blobs: opts.blobs,
    pipeline: opts.pipeline,
    metrics: new MetricsRecorder(redis, settings.prefix),
    workerId: id,
    log: log.child({ worker_id: id }),
    overlays,
    retry: settings,
  });
  // a pipeline that batches needs that many jobs running at once to fill its batches
  const concurrency = Math.max(settings.workerConcurrency, opts.pipeline.info().batchMax ?? 1);
  const worker = new Worker<unknown, JobOutcome>(PERCEPTION_QUEUE, processor, {
    connection: redis,
    prefix: settings.prefix,
    concurrency,
    lockDuration: settings.lockMs,
    stalledInterval: settings.stalledIntervalMs,
    maxStalledCount: settings.maxStalled,
  });
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  // Jobs BullMQ fails without our processor finishing them (stalled too often) must not stay "running".
  worker.on('failed', (job, err) => {
    if (!job) return;
    void job
      .getState()
      .then((state) => {
        if (state !== 'failed') return null;
        log.error({ job_id: job.id, err: err.message }, 'BullMQ failed the job');
        return lifecycle.markFailed(String(job.id), problems.internal(PUBLIC_DETAIL.workerLost));
      })
      .catch((e) => log.error({ err: e, job_id: job.id }, 'could not record a failed job'));
  });
  await worker.waitUntilReady();
  const info = opts.pipeline.info();
  const heartbeat = startHeartbeat(
    redis,
    settings.prefix,
    { worker_id: id, provider: info.provider, model: info.model },
    settings.heartbeatMs,
    () => worker.isRunning() && !worker.isPaused(),
  );
  log.info({ worker_id: id, provider: info.provider, precision: info.precision, model: info.model, concurrency, batch_max: info.batchMax ?? 1 }, 'perception worker consuming');
  return {
    id,
    worker,
    async close() {
      await worker.close();
      await heartbeat.stop();
      await overlays?.close();
    },
  };
}

// Processes one perception job: validate the payload, honour cancel and deadline, read the image,
// run the pipeline with stage hooks, write the result (idempotent: keyed by job id), finish the record,
// then render the overlay PNG.
// Transient failures (storage, network, Redis) are rethrown so BullMQ retries them with backoff; bad input
// fails the job at once with UnrecoverableError.
import { UnrecoverableError, type Job } from 'bullmq';
import { JOB_SCHEMA_VERSION, JobPayload, STAGES, type Stage } from '../../contracts/job.js';
import { PerceptionResult } from '../../contracts/result.js';
import type { Logger } from '../../lib/log.js';
import type { MetricsRecorder } from '../../lib/metrics.js';
import { jobProblems as problems } from '../../contracts/problem.js';
import type { JobLifecycle, StopReason } from '../../lib/queue/index.js';
import { overlayKey, resultKey, type BlobStore } from '../../lib/storage/index.js';
import { PipelineCanceled, PipelineInputError, type PerceptionPipeline } from '../pipeline/types.js';
import type { OverlayRenderer } from './overlay-renderer.js';
import { StageClock } from './stage-clock.js';

export interface ProcessorDeps {
  lifecycle: JobLifecycle;
  blobs: BlobStore;
  pipeline: PerceptionPipeline;
  metrics: MetricsRecorder;
  workerId: string;
  log: Logger;
  /** Renders jobs/{id}/overlay.png after a success; absent: no overlays. */
  overlays?: OverlayRenderer;
}

export type JobOutcome = 'succeeded' | 'failed' | 'canceled' | 'expired' | 'skipped';

/** Fails the job for good: the record says why, BullMQ does not retry. */
async function reject(lifecycle: JobLifecycle, id: string, detail: string): Promise<never> {
  await lifecycle.markFailed(id, problems.unsupportedPayload(detail));
  throw new UnrecoverableError(detail);
}

async function parsePayload(job: Job, lifecycle: JobLifecycle): Promise<JobPayload> {
  const data = job.data as { v?: unknown; job_id?: unknown } | null;
  const id = typeof data?.job_id === 'string' ? data.job_id : String(job.id);
  if (data?.v !== JOB_SCHEMA_VERSION) {
    return reject(lifecycle, id, `job ${id}: payload version ${JSON.stringify(data?.v)} is not supported (this worker knows v${JOB_SCHEMA_VERSION})`);
  }
  const parsed = JobPayload.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    return reject(lifecycle, id, `job ${id}: invalid payload: ${issues}`);
  }
  return parsed.data;
}

export function createPerceptionProcessor(deps: ProcessorDeps): (job: Job) => Promise<JobOutcome> {
  const { lifecycle, blobs, pipeline, metrics, workerId } = deps;

  return async (job) => {
    const p = await parsePayload(job, lifecycle);
    const id = p.job_id;
    const log = deps.log.child({ job_id: id, request_id: p.request_id, attempt: job.attemptsMade + 1 });

    if (Date.parse(p.deadline_at) < Date.now()) {
      // Waiting past the deadline expires the job; a retry that resumes past it cancels the running job.
      const expired = await lifecycle.markExpired(id);
      if (expired?.applied) {
        log.info('job expired before it started');
        return 'expired';
      }
      if (expired?.view.status === 'running') {
        await lifecycle.markCanceled(id, problems.deadlineExceeded(p.deadline_at));
        return 'canceled';
      }
      return 'skipped';
    }

    const started = await lifecycle.markRunning(id, workerId);
    if (!started) {
      log.info('job already finished or gone; skipping');
      return 'skipped';
    }

    const clock = new StageClock();
    let stopReason: StopReason | null = null;
    const onStage = async (stage: Stage): Promise<void> => {
      const ended = clock.start(stage);
      if (ended) await metrics.stageDuration(ended.stage, ended.ms / 1000);
      await lifecycle.setStage(id, stage, STAGES.indexOf(stage) / STAGES.length, clock.timings);
    };
    const shouldStop = async (): Promise<boolean> => {
      stopReason = await lifecycle.stopReason(id);
      return stopReason !== null;
    };
    const checkpoint = async (stage: Stage): Promise<void> => {
      if (await shouldStop()) throw new PipelineCanceled(stage);
      await onStage(stage);
    };
    const stopClock = async (): Promise<void> => {
      const ended = clock.stop();
      if (ended) await metrics.stageDuration(ended.stage, ended.ms / 1000);
    };

    try {
      await checkpoint('fetch');
      const key = p.image.storage_key;
      const image = await blobs.get(key);
      if (!image) throw new PipelineInputError(problems.inputMissing(key).detail!, '/image');
      const result = await pipeline.run({ jobId: id, image, tasks: p.tasks, caption: p.caption }, { onStage, shouldStop });
      const checked = PerceptionResult.safeParse(result);
      if (!checked.success) {
        throw new UnrecoverableError(`pipeline returned an invalid result for job ${id}: ${checked.error.issues[0]?.message}`);
      }
      await checkpoint('store');
      const rKey = resultKey(id);
      await blobs.put(rKey, JSON.stringify(checked.data), 'application/json');
      await stopClock();
      const done = await lifecycle.markSucceeded(id, { resultKey: rKey, result: checked.data, timings: clock.timings });
      if (!done?.applied) {
        // Canceled or finished elsewhere between the last check and now: that outcome stands.
        log.info({ status: done?.view.status }, 'result written, but the job had already ended');
        return 'skipped';
      }
      log.info({ timings_ms: clock.timings }, 'job succeeded');
      if (deps.overlays) {
        // After the success, so the job's latency does not include it; best effort, the result stands either way.
        await deps.overlays
          .render(image, checked.data)
          .then((png) => blobs.put(overlayKey(id), png, 'image/png'))
          .catch((err: Error) => log.warn({ err: err.message }, 'overlay not written'));
      }
      return 'succeeded';
    } catch (e) {
      await stopClock();
      if (e instanceof PipelineCanceled) {
        const problem =
          stopReason === 'deadline' ? problems.deadlineExceeded(p.deadline_at, e.stage) : problems.canceledByUser(e.stage);
        await lifecycle.markCanceled(id, problem, clock.timings);
        log.info({ stage: e.stage, reason: stopReason }, 'job canceled');
        return 'canceled';
      }
      if (e instanceof PipelineInputError) {
        await lifecycle.markFailed(id, problems.invalidInput(e.message, e.pointer), clock.timings);
        log.info({ err: e.message }, 'job failed: invalid input');
        throw new UnrecoverableError(e.message);
      }
      if (e instanceof UnrecoverableError) {
        await lifecycle.markFailed(id, problems.internal(e.message), clock.timings);
        throw e;
      }
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 >= attempts) {
        await lifecycle.markFailed(id, problems.internal(`${(e as Error).message} (after ${attempts} attempts)`), clock.timings);
        log.error({ err: e }, 'job failed after its last attempt');
      } else {
        log.warn({ err: e }, 'transient failure; BullMQ retries with backoff');
      }
      throw e;
    }
  };
}

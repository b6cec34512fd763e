// Processes one perception job: validate the payload, honour cancel and deadline, read the image,
// run the pipeline with stage hooks, write the result (idempotent: keyed by job id), finish the record,
// then render the overlay PNG.
// Storage that does not answer holds the job (status retrying) and tries again with backoff until storage is
// back, the wait (STORAGE_WAIT_MS) or the deadline runs out, spending none of its attempts; other failures are
// rethrown so BullMQ retries them with backoff, up to JOB_ATTEMPTS; bad input fails the job at once with
// UnrecoverableError. Public problems say what happened in the user's terms; causes go to the log.
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { JOB_SCHEMA_VERSION, JobPayload, STAGES, type Stage } from '../../contracts/job.js';
import { PerceptionResult } from '../../contracts/result.js';
import type { Logger } from '../../lib/log.js';
import type { MetricsRecorder } from '../../lib/metrics.js';
import { jobProblems as problems, PUBLIC_DETAIL } from '../../contracts/problem.js';
import { isDependencyOutage } from '../../lib/outage.js';
import type { JobLifecycle, QueueSettings, StopReason } from '../../lib/queue/index.js';
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
  retry: Pick<QueueSettings, 'jobBackoffMs' | 'storageWaitMs' | 'storageRetryMaxMs'>;
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

export function createPerceptionProcessor(deps: ProcessorDeps): (job: Job, token?: string) => Promise<JobOutcome> {
  const { lifecycle, blobs, pipeline, metrics, workerId } = deps;

  /** Holds a job whose storage did not answer: true when it will be tried again (the caller throws
   *  DelayedError), false when the wait or the deadline ran out and the job failed. */
  async function waitForStorage(job: Job, token: string | undefined, p: JobPayload, timings: Record<string, number>): Promise<boolean> {
    const id = p.job_id;
    const now = Date.now();
    const since = (await lifecycle.outageSince(id)) ?? now;
    // Delays double from JOB_BACKOFF_MS: after waiting T, about log2(T / backoff + 1) tries were made.
    const tries = Math.floor(Math.log2((now - since) / deps.retry.jobBackoffMs + 1));
    const next = now + Math.min(deps.retry.storageRetryMaxMs, deps.retry.jobBackoffMs * 2 ** tries);
    const until = next > Date.parse(p.deadline_at) ? 'deadline' : next - since > deps.retry.storageWaitMs ? 'window' : null;
    if (until) {
      await lifecycle.markFailed(id, problems.storageUnavailable(until), timings);
      return false;
    }
    const retry = { reason: 'storage-unavailable' as const, detail: PUBLIC_DETAIL.storageWait, since: new Date(since).toISOString(), next_attempt_at: new Date(next).toISOString() };
    if (!(await lifecycle.markRetrying(id, retry))?.applied) return false;
    await job.moveToDelayed(next, token);
    return true;
  }

  return async (job, token) => {
    const p = await parsePayload(job, lifecycle);
    const id = p.job_id;
    let log = deps.log.child({ job_id: id, request_id: p.request_id });

    if (Date.parse(p.deadline_at) < Date.now()) {
      // Waiting past the deadline expires the job; a retry that resumes past it cancels the running job.
      const expired = await lifecycle.markExpired(id);
      if (expired?.applied) {
        log.info('job expired before it started');
        return 'expired';
      }
      if (expired?.view.status === 'running' || expired?.view.status === 'retrying') {
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
    // The record's count, which stalls and storage waits advance too, so logs and API agree.
    log = log.child({ attempt: started.view.attempts });

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
        log.error({ issue: checked.error.issues[0] }, 'pipeline returned an invalid result');
        await lifecycle.markFailed(id, problems.internal(PUBLIC_DETAIL.invalidResult), clock.timings);
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
      if (e instanceof UnrecoverableError) throw e;
      if (isDependencyOutage(e)) {
        log.warn({ err: e }, 'storage did not answer');
        if (await waitForStorage(job, token, p, clock.timings)) throw new DelayedError();
        log.error('job failed: storage did not come back in time');
        throw new UnrecoverableError('storage unavailable');
      }
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 >= attempts) {
        await lifecycle.markFailed(id, problems.internal(PUBLIC_DETAIL.processing(attempts)), clock.timings);
        log.error({ err: e }, 'job failed after its last attempt');
      } else {
        const next = new Date(Date.now() + deps.retry.jobBackoffMs * 2 ** job.attemptsMade).toISOString();
        await lifecycle.markRetrying(id, { reason: 'processing-failed', detail: PUBLIC_DETAIL.processing(job.attemptsMade + 1), since: new Date().toISOString(), next_attempt_at: next });
        log.warn({ err: e }, 'processing failed; BullMQ retries with backoff');
      }
      throw e;
    }
  };
}

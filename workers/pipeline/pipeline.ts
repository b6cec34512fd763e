// createOnnxPipeline: the PerceptionPipeline (types.ts) on an ONNX model bundle. The ORT sessions live in a
// worker thread (thread.ts), post-processing runs on threads of its own (postprocess-pool.ts), so that the
// sessions run other jobs' graphs meanwhile; this side orders the stages, checks for cancellation between them, reports stages
// and timings, and makes the thread drop a job's tensors when the job ends, however it ends. With dynamic batching
// (`batch`), the vision, language and perception stages of concurrent runs go through one Batcher each
// (batcher.ts), so that jobs that arrive together run their stages together.
import { RESULT_SCHEMA_VERSION, type PerceptionResult, type TaskResult } from '../../contracts/result.js';
import type { BatchedStage, Stage } from '../../contracts/job.js';
import type { Task } from '../../contracts/task.js';
import { Batcher, type BatchRecord } from './batcher.js';
import type { EngineConfig, EngineInfo, LanguageItem, LanguageSummary, PerceptionItem } from './engine.js';
import { perceptionGroup } from './perception-group.js';
import { PostprocessPool } from './postprocess-pool.js';
import { EngineThread } from './thread-host.js';
import {
  PipelineCanceled,
  type PerceptionPipeline,
  type PipelineHooks,
  type PipelineInfo,
  type PipelineInput,
  type PipelineLogger,
} from './types.js';

/** Dynamic batching: the most items (images for vision, tasks for language and perception) per batch, and how
 *  long a batch waits for more after its first item arrived. */
export interface BatchSettings {
  max: number;
  waitMs: number;
}

/** The engine's configuration (bundle dir, provider, limits), dynamic batching, post-processing threads
 *  (default 1), and who hears of each batch. */
export type OnnxPipelineOptions = EngineConfig & {
  batch?: BatchSettings;
  postprocessThreads?: number;
  onBatch?: (stage: BatchedStage, batch: BatchRecord) => void;
};

export interface OnnxPerceptionPipeline extends PerceptionPipeline {
  info(): PipelineInfo & { fallbackReason?: string; warmupMs: number; generation: EngineInfo['generation']; batchMax: number };
  /** Jobs whose tensors the pipeline thread still holds (0 between jobs). */
  activeJobs(): Promise<number>;
}

export async function createOnnxPipeline(opts: OnnxPipelineOptions): Promise<OnnxPerceptionPipeline> {
  const { logger, batch, onBatch, postprocessThreads, ...cfg } = opts;
  const post = PostprocessPool.start(postprocessThreads ?? 1);
  const thread = await EngineThread.start(cfg, logger).catch(async (err: unknown) => {
    await post.close();
    throw err;
  });
  const tested = thread.info.maxBatch;
  const max = Math.min(batch?.max ?? 1, tested);
  if ((batch?.max ?? 1) > tested) logger?.warn({ requested: batch?.max, tested }, `BATCH_MAX lowered to ${tested}, the largest batch the bundle was tested with (manifest batching.max_batch)`);
  const settings = { max, waitMs: batch?.waitMs ?? 0 };
  const batchers = {
    vision: new Batcher<string, void>((keys) => thread.call('vision', keys).then(() => keys.map(() => undefined)), { ...settings, onBatch: (b) => onBatch?.('vision', b) }),
    language: new Batcher<LanguageItem, LanguageSummary>((items) => thread.call('language', items), { ...settings, onBatch: (b) => onBatch?.('language', b) }),
    perception: new Batcher<PerceptionItem & { group: string }, void>(
      (items) => thread.call('perception', items.map(({ group: _, ...item }) => item)).then(() => items.map(() => undefined)),
      { ...settings, group: (it) => it.group, onBatch: (b) => onBatch?.('perception', b) },
    ),
  };
  let jobSeq = 0;

  async function run(input: PipelineInput, hooks: PipelineHooks): Promise<PerceptionResult> {
    // a unique key per run, so two runs of the same job id never share thread-side state
    const key = `${input.jobId}#${++jobSeq}`;
    const timings: Record<string, number> = {};
    let current: Stage = 'preprocess';
    const checkStop = async () => {
      if (await hooks.shouldStop()) throw new PipelineCanceled(current);
    };
    const stage = async <T>(name: Stage, body: () => Promise<T>): Promise<T> => {
      current = name;
      await checkStop();
      await hooks.onStage(name);
      const t0 = performance.now();
      try {
        return await body();
      } finally {
        timings[name] = (timings[name] ?? 0) + (performance.now() - t0);
      }
    };
    const { tasks } = input;
    /** The largest batch each stage ran this job's work in: reported in timings_ms as `<stage>_batch`. */
    const batchSizes: Partial<Record<BatchedStage, number>> = {};
    const noted = <O>(name: BatchedStage) => (r: { value: O; batch: BatchRecord }): O => {
      batchSizes[name] = Math.max(batchSizes[name] ?? 0, r.batch.size);
      return r.value;
    };
    try {
      const sizes = await stage('preprocess', () => thread.call('preprocess', key, input.image));
      await stage('vision', () => batchers.vision.submit(key).then(noted('vision')));
      const language = await stage('language', () =>
        allTasks(tasks, (task, i) => batchers.language.submit({ jobId: key, taskIndex: i, task, caption: input.caption }).then(noted<LanguageSummary>('language'))),
      );
      await stage('perception', () =>
        allTasks(tasks, (task, i) =>
          batchers.perception.submit({ jobId: key, taskIndex: i, task, group: perceptionGroup(task.type === 'sentence', language[i]!.numPhrases) }).then(noted('perception')),
        ),
      );
      const results: TaskResult[] = [];
      await stage('postprocess', async () => {
        for (const [i, task] of tasks.entries()) {
          if (i > 0) await checkStop();
          results.push(await post.run(task, i, await thread.call('postprocessInput', key, i)));
        }
      });
      const info = thread.info;
      return {
        schema_version: RESULT_SCHEMA_VERSION,
        job_id: input.jobId,
        model: info.model,
        provider: info.provider,
        image: { width: sizes.original.width, height: sizes.original.height },
        caption: language[0]?.caption ?? null,
        tasks: results,
        timings_ms: {
          ...Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 10) / 10])),
          ...Object.fromEntries(Object.entries(batchSizes).map(([k, v]) => [`${k}_batch`, v])),
        },
      };
    } finally {
      await thread.call('release', key).catch(() => undefined);
    }
  }

  return {
    info: () => ({ provider: thread.info.provider, precision: thread.info.precision, model: thread.info.model, fallbackReason: thread.info.fallbackReason, warmupMs: thread.info.warmupMs, generation: thread.info.generation, batchMax: max }),
    run,
    activeJobs: () => thread.call('activeJobs'),
    close: async () => {
      await Promise.all([thread.close(), post.close()]);
    },
  };
}

/** `fn` on every task at once (so that they can share batches); waits for all of them, so that none is still
 *  running when the job's state is released, then fails with the first error. */
async function allTasks<O>(tasks: Task[], fn: (task: Task, index: number) => Promise<O>): Promise<O[]> {
  const settled = await Promise.allSettled(tasks.map(fn));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<O>).value);
}

// createOnnxPipeline: the PerceptionPipeline (types.ts) on an ONNX model bundle. The ORT sessions live in a
// worker thread (thread.ts); this side orders the stages, checks for cancellation between them, reports stages
// and timings, and makes the thread drop a job's tensors when the job ends, however it ends.
import { RESULT_SCHEMA_VERSION, type PerceptionResult, type TaskResult } from '../../contracts/result.js';
import type { Stage } from '../../contracts/job.js';
import type { EngineConfig, EngineInfo } from './engine.js';
import { EngineThread } from './thread-host.js';
import {
  PipelineCanceled,
  type PerceptionPipeline,
  type PipelineHooks,
  type PipelineInfo,
  type PipelineInput,
  type PipelineLogger,
} from './types.js';

/** The engine's configuration: bundle dir, provider, limits. */
export type OnnxPipelineOptions = EngineConfig;

export interface OnnxPerceptionPipeline extends PerceptionPipeline {
  info(): PipelineInfo & { fallbackReason?: string; warmupMs: number; generation: EngineInfo['generation'] };
  /** Jobs whose tensors the pipeline thread still holds (0 between jobs). */
  activeJobs(): Promise<number>;
}

export async function createOnnxPipeline(opts: OnnxPipelineOptions): Promise<OnnxPerceptionPipeline> {
  const { logger, ...cfg } = opts;
  const thread = await EngineThread.start(cfg, logger);
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
    try {
      const sizes = await stage('preprocess', () => thread.call('preprocess', key, input.image));
      await stage('vision', () => thread.call('vision', key));
      let caption: string | null = null;
      await stage('language', async () => {
        for (const [i, task] of tasks.entries()) {
          if (i > 0) await checkStop();
          const out = await thread.call('language', key, i, task, input.caption);
          if (i === 0) caption = out.caption;
        }
      });
      await stage('perception', async () => {
        for (const [i, task] of tasks.entries()) {
          if (i > 0) await checkStop();
          await thread.call('perception', key, i, task);
        }
      });
      const results: TaskResult[] = [];
      await stage('postprocess', async () => {
        for (const [i, task] of tasks.entries()) {
          if (i > 0) await checkStop();
          results.push(await thread.call('postprocess', key, i, task));
        }
      });
      const info = thread.info;
      return {
        schema_version: RESULT_SCHEMA_VERSION,
        job_id: input.jobId,
        model: info.model,
        provider: info.provider,
        image: { width: sizes.original.width, height: sizes.original.height },
        caption,
        tasks: results,
        timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 10) / 10])),
      };
    } finally {
      await thread.call('release', key).catch(() => undefined);
    }
  }

  return {
    info: () => ({ provider: thread.info.provider, precision: thread.info.precision, model: thread.info.model, fallbackReason: thread.info.fallbackReason, warmupMs: thread.info.warmupMs, generation: thread.info.generation }),
    run,
    activeJobs: () => thread.call('activeJobs'),
    close: () => thread.close(),
  };
}

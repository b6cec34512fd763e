// Chooses the pipeline at start-up: the ONNX pipeline (workers/pipeline/pipeline.ts) on the model bundle in
// MODEL_DIR, or — for tests and benchmarks only — the module named by PIPELINE_MODULE, which must export
// createPipeline(): Promise<PerceptionPipeline>. Both are imported lazily, so a test worker never loads
// onnxruntime-node and a production worker never loads test code.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { Logger } from '../../lib/log.js';
import type { OnnxPipelineOptions } from '../pipeline/pipeline.js';
import type { PerceptionPipeline } from '../pipeline/types.js';

const Env = z.object({
  MODEL_DIR: z.string().optional(),
  /** cuda falls back to cpu (and says why in the log and the heartbeat) when its provider does not load. */
  ORT_PROVIDER: z.enum(['cpu', 'cuda']).default('cpu'),
  ORT_DEVICE_ID: z.coerce.number().int().min(0).default(0),
  /** auto: the bundle's fp16 graphs on CUDA when it has them, fp32 on CPU (workers/pipeline/precision.ts). */
  ORT_PRECISION: z.enum(['auto', 'fp32', 'fp16']).default('auto'),
  PIPELINE_MODULE: z.string().optional(),
  /** Dynamic batching (workers/pipeline/batcher.ts): the most images or tasks one graph run takes from concurrent
   *  jobs (1 = none; capped by the bundle's tested `batching.max_batch`), and how long a batch waits to fill. */
  BATCH_MAX: z.coerce.number().int().min(1).max(64).default(1),
  BATCH_WAIT_MS: z.coerce.number().int().min(0).max(10_000).default(5),
  /** Threads that post-process (per-pixel work at the original size) beside the thread of the ORT sessions. */
  POSTPROCESS_THREADS: z.coerce.number().int().min(1).max(64).default(1),
});

export async function loadPipeline(
  env: Record<string, string | undefined>,
  opts: { log: Logger; maxPixels: number; onBatch?: OnnxPipelineOptions['onBatch'] },
): Promise<PerceptionPipeline> {
  const parsed = Env.safeParse(env);
  if (!parsed.success) throw new Error(`invalid pipeline settings: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const e = parsed.data;
  if (e.PIPELINE_MODULE) {
    const mod = (await import(pathToFileURL(path.resolve(e.PIPELINE_MODULE)).href)) as {
      createPipeline?: () => Promise<PerceptionPipeline>;
    };
    if (typeof mod.createPipeline !== 'function') throw new Error(`PIPELINE_MODULE ${e.PIPELINE_MODULE} does not export createPipeline()`);
    opts.log.warn({ module: e.PIPELINE_MODULE }, 'using a test pipeline, not the model');
    return mod.createPipeline();
  }
  if (!e.MODEL_DIR) throw new Error('MODEL_DIR is not set: point it at an exported model bundle (model/BUNDLE.md)');
  const { createOnnxPipeline } = await import('../pipeline/pipeline.js');
  return createOnnxPipeline({
    modelDir: e.MODEL_DIR,
    provider: e.ORT_PROVIDER,
    deviceId: e.ORT_DEVICE_ID,
    precision: e.ORT_PRECISION,
    maxPixels: opts.maxPixels,
    logger: opts.log,
    batch: { max: e.BATCH_MAX, waitMs: e.BATCH_WAIT_MS },
    postprocessThreads: e.POSTPROCESS_THREADS,
    onBatch: opts.onBatch,
  });
}

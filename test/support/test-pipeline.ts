// A deterministic PerceptionPipeline for the lifecycle tests only (loaded by the worker through
// PIPELINE_MODULE, or imported in-process). It goes through the same stages as the ONNX pipeline and
// answers a schema-valid result derived from the image bytes and the phrases, without a model.
//
// Behaviour knobs:
//   env TEST_PIPELINE_STAGE_MS    delay per stage (default 0), applied to every job
//   phrase "test:slow=<ms>"       delay per stage for this job
//   phrase "test:invalid"         the pipeline rejects the input (PipelineInputError)
//   phrase "test:crash"           the model fails (a plain Error naming an internal address, as a crashed
//                                 runtime's message might)
//   phrase "test:block=<ms>"      blocks the event loop that long in the vision stage, as inference on the
//                                 main thread would (the failure the ONNX pipeline's worker thread prevents)
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import type { Stage } from '../../contracts/job.js';
import { RESULT_SCHEMA_VERSION, type PerceptionResult, type TaskResult } from '../../contracts/result.js';
import type { Task } from '../../contracts/task.js';
import { encodeRle } from '../../workers/pipeline/rle.js';
import {
  PipelineCanceled,
  PipelineInputError,
  type PerceptionPipeline,
  type PipelineHooks,
  type PipelineInput,
} from '../../workers/pipeline/types.js';

const PIPELINE_STAGES: Stage[] = ['preprocess', 'vision', 'language', 'perception', 'postprocess'];
const MODEL = { name: 'test-pipeline', version: '1', variant: 'paper' as const };

const phrasesOf = (tasks: Task[]): string[] => tasks.flatMap((t) => (t.type === 'words' ? t.phrases.map((p) => p.text) : [t.sentence]));

function blockMs(tasks: Task[]): number {
  const block = phrasesOf(tasks).find((p) => p.startsWith('test:block='));
  return block ? Number(block.slice('test:block='.length)) : 0;
}

function stageDelay(tasks: Task[]): number {
  const slow = phrasesOf(tasks).find((p) => p.startsWith('test:slow='));
  return slow ? Number(slow.slice('test:slow='.length)) : Number(process.env.TEST_PIPELINE_STAGE_MS ?? 0);
}

/** A box and a rectangular mask from the hash of the image and the phrase: same input, same answer. */
function detect(image: Uint8Array, phrase: string, index: number, w: number, h: number, outputs: string[]) {
  const d = createHash('sha256').update(image).update(phrase).digest();
  const x0 = d[0]! % Math.max(1, w - 1);
  const y0 = d[1]! % Math.max(1, h - 1);
  const x1 = Math.min(w, x0 + 1 + (d[2]! % w));
  const y1 = Math.min(h, y0 + 1 + (d[3]! % h));
  const area = (x1 - x0) * (y1 - y0);
  const mask = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) mask.fill(1, y * w + x0, y * w + x1);
  return {
    phrase_index: index,
    phrase,
    score: 0.5 + (d[4]! % 50) / 100,
    ...(outputs.includes('boxes') ? { box: [x0, y0, x1, y1] as [number, number, number, number] } : {}),
    ...(outputs.includes('masks') ? { mask: encodeRle({ data: mask, width: w, height: h }) } : {}),
    area,
  };
}

function answer(task: Task, taskIndex: number, image: Uint8Array, w: number, h: number): TaskResult {
  const phrases = task.type === 'words' ? task.phrases.map((p) => p.text) : [task.sentence];
  return {
    task_index: taskIndex,
    type: task.type,
    mode: task.mode,
    detections: phrases.map((p, i) => detect(image, p, i, w, h, task.outputs)),
  };
}

export async function createPipeline(): Promise<PerceptionPipeline> {
  return {
    info: () => ({ provider: 'cpu', model: MODEL }),
    async run(input: PipelineInput, hooks: PipelineHooks): Promise<PerceptionResult> {
      if (phrasesOf(input.tasks).includes('test:invalid')) throw new PipelineInputError('test pipeline: input refused on request', '/tasks/0');
      if (phrasesOf(input.tasks).includes('test:crash')) throw new Error('test pipeline: runtime at 10.1.2.3:7000 crashed');
      const delay = stageDelay(input.tasks);
      const timings: Record<string, number> = {};
      let size: { width?: number; height?: number } = {};
      for (const stage of PIPELINE_STAGES) {
        if (await hooks.shouldStop()) throw new PipelineCanceled(stage);
        await hooks.onStage(stage);
        const t0 = performance.now();
        if (stage === 'preprocess') {
          size = await sharp(input.image).metadata().catch(() => {
            throw new PipelineInputError('the image does not decode', '/image');
          });
        }
        if (stage === 'vision' && blockMs(input.tasks) > 0) {
          const until = Date.now() + blockMs(input.tasks);
          while (Date.now() < until); // deliberately synchronous
        }
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        timings[stage] = performance.now() - t0;
      }
      const w = size.width!;
      const h = size.height!;
      return {
        schema_version: RESULT_SCHEMA_VERSION,
        job_id: input.jobId,
        model: MODEL,
        provider: 'cpu',
        image: { width: w, height: h },
        caption: input.caption ? `an image with ${phrasesOf(input.tasks).join(', ')}` : null,
        tasks: input.tasks.map((t, i) => answer(t, i, input.image, w, h)),
        timings_ms: timings,
      };
    },
    async close() {},
  };
}

// Dynamic batching (workers/pipeline/batcher.ts, language-batch.ts): jobs that run together — words and sentences,
// caption on and off, images of different sizes, both variants — each get exactly what they get alone (the same
// captions and ids, detections within the parity tolerances), and a job that is canceled or fails between stages
// takes none of its batch-mates with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PerceptionResult } from '../../contracts/result.js';
import { Task } from '../../contracts/task.js';
import type { BatchRecord } from '../../workers/pipeline/batcher.js';
import { createOnnxPipeline, type OnnxPerceptionPipeline } from '../../workers/pipeline/pipeline.js';
import { PipelineCanceled, PipelineInputError, type PipelineHooks, type PipelineInput } from '../../workers/pipeline/types.js';
import { ensureBundle } from './bundles.js';
import { compareTask } from './compare.js';
import { syntheticPng } from './images.js';
import { CASES, caseSeed } from './parity-cases.js';

// a generous wait, so that the first vision batch fills to 8 however slowly a loaded machine preprocesses
const BATCH = { max: 8, waitMs: 1000 };
const hooks: PipelineHooks = { onStage: () => undefined, shouldStop: () => false };

/** Every parity case twice, caption on and off: 10 jobs, 28 tasks. */
async function jobs(): Promise<PipelineInput[]> {
  const out: PipelineInput[] = [];
  for (const [i, c] of CASES.entries()) {
    const image = await syntheticPng(c.size[0], c.size[1], caseSeed(i));
    for (const caption of [c.caption, !c.caption]) {
      out.push({ jobId: `${c.id}-${caption ? 'caption' : 'silent'}`, image, tasks: c.tasks.map((t) => Task.parse(t)), caption });
    }
  }
  return out;
}

function expectSame(batched: PerceptionResult, alone: PerceptionResult): void {
  const id = alone.job_id;
  expect(batched.caption, `${id} caption`).toBe(alone.caption);
  expect(batched.tasks.length).toBe(alone.tasks.length);
  batched.tasks.forEach((t, i) => expect(compareTask(t, alone.tasks[i]!), `${id} task ${i}`).toEqual([]));
}

describe.each(['paper', 'released-code'] as const)('dynamic batching, %s', (variant) => {
  let alone: OnnxPerceptionPipeline;
  let batched: OnnxPerceptionPipeline;
  const batches: Record<string, BatchRecord[]> = {};
  let inputs: PipelineInput[];
  const reference = new Map<string, PerceptionResult>();

  beforeAll(async () => {
    const modelDir = ensureBundle(variant);
    inputs = await jobs();
    alone = await createOnnxPipeline({ modelDir, provider: 'cpu' });
    batched = await createOnnxPipeline({ modelDir, provider: 'cpu', batch: BATCH, onBatch: (stage, b) => (batches[stage] ??= []).push(b) });
    for (const job of inputs) reference.set(job.jobId, await alone.run(job, hooks));
  }, 900_000);

  afterAll(async () => {
    await alone?.close();
    await batched?.close();
  });

  it('gives every job of a mixed batch what it gets alone', async () => {
    expect(batched.info().batchMax).toBe(BATCH.max);
    const results = await Promise.all(inputs.map((job) => batched.run(job, hooks)));
    results.forEach((r) => expectSame(r, reference.get(r.job_id)!));
    // the jobs really shared batches: 10 images in batches of at most 8, tasks of several jobs per batch
    expect(batches.vision!.map((b) => b.size).sort()).toEqual([2, 8]);
    expect(Math.max(...batches.language!.map((b) => b.size))).toBe(BATCH.max);
    expect(Math.max(...batches.perception!.map((b) => b.size))).toBeGreaterThan(1);
    // each job says the batch it ran in
    expect(results.map((r) => r.timings_ms.vision_batch).sort()).toEqual([2, 2, 8, 8, 8, 8, 8, 8, 8, 8]);
    expect(results[0]!.timings_ms.language_batch).toBeGreaterThan(1);
    expect(await batched.activeJobs()).toBe(0);
  }, 300_000);

  it('drops only the job that is canceled between stages or fails', async () => {
    const [canceled, bad, ...rest] = inputs.slice(0, 6);
    let stage = '';
    const cancelAtLanguage: PipelineHooks = { onStage: (s) => void (stage = s), shouldStop: () => stage === 'vision' };
    const badJob = { ...bad!, jobId: 'bad', tasks: [...bad!.tasks, Task.parse({ type: 'sentence', sentence: 'the <image> on the left' })] };
    const settled = await Promise.allSettled([
      batched.run(canceled!, cancelAtLanguage),
      batched.run(badJob, hooks),
      ...rest.map((job) => batched.run(job, hooks)),
    ]);
    expect(settled[0]).toMatchObject({ status: 'rejected', reason: expect.any(PipelineCanceled) });
    expect(((settled[0] as PromiseRejectedResult).reason as PipelineCanceled).stage).toBe('language');
    expect(settled[1]).toMatchObject({ status: 'rejected', reason: expect.any(PipelineInputError) });
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/reserved token text "<image>"/);
    settled.slice(2).forEach((s, i) => {
      expect(s.status).toBe('fulfilled');
      expectSame((s as PromiseFulfilledResult<PerceptionResult>).value, reference.get(rest[i]!.jobId)!);
    });
    expect(await batched.activeJobs()).toBe(0);
  }, 300_000);
});

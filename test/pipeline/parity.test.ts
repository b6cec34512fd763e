// Parity with the model package's reference (python -m mvp_lm.reference, onnxruntime + numpy/torch post-processing)
// on the same tiny bundles and inputs: every task mode, both variants, caption on and off, chunked vocabularies.
// The engine decodes captions with decoder_generate.onnx (the bundles have it), the reference with the step graph.
// The fp16 graphs too (run on ONNX Runtime's CPU kernels, as a CUDA worker runs them by default): the engine and
// the reference both at fp16, with the same tolerances.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../../contracts/task.js';
import { loadBundle } from '../../workers/pipeline/bundle.js';
import { PipelineEngine } from '../../workers/pipeline/engine.js';
import { createOnnxPipeline } from '../../workers/pipeline/pipeline.js';
import { sentencePrompt, wordPrompts } from '../../workers/pipeline/prompt.js';
import { loadTokenizer } from '../../workers/pipeline/tokenizer.js';
import { ensureBundle, runReference, type ReferenceCase, type ReferenceDoc } from './bundles.js';
import { compareTask, maxRelDiff } from './compare.js';
import { syntheticPng } from './images.js';
import { CASES, caseSeed } from './parity-cases.js';

// Raw outputs: relative to their range. At fp16 the engine's and the reference's float32 inputs (pixel values
// computed by sharp and by PIL/numpy) may round to float16 one unit apart (2^-10 relative), and that unit travels;
// results then agree to 5e-3 relative (scores, boxes) and mask IoU 0.98.
const CONFIGS = [
  { variant: 'paper', bundle: 'paper', precision: 'fp32', rawTol: 1e-3, tol: undefined },
  { variant: 'released-code', bundle: 'released-code', precision: 'fp32', rawTol: 1e-3, tol: undefined },
  { variant: 'paper', bundle: 'paper-fp16', precision: 'fp16', rawTol: 2e-2, tol: { rel: 5e-3, minIoU: 0.98 } },
] as const;

for (const { variant, bundle: bundleName, precision, rawTol, tol } of CONFIGS) {
  describe(`parity with the Python reference (${variant}, ${precision})`, () => {
    let dir: string;
    let ref: ReferenceDoc;
    let engine: PipelineEngine;
    const images = new Map<string, Buffer>();

    beforeAll(async () => {
      dir = ensureBundle(bundleName);
      const work = path.resolve(`.data/test/parity-${bundleName}`);
      mkdirSync(work, { recursive: true });
      const cases: ReferenceCase[] = [];
      for (const [i, c] of CASES.entries()) {
        const png = await syntheticPng(c.size[0], c.size[1], caseSeed(i));
        writeFileSync(path.join(work, `${c.id}.png`), png);
        images.set(c.id, png);
        cases.push({ id: c.id, image: `${c.id}.png`, tasks: c.tasks, caption: c.caption });
      }
      ref = runReference(dir, work, cases, precision);
      engine = await PipelineEngine.create({ modelDir: dir, provider: 'cpu', precision });
    }, 600_000);

    afterAll(async () => {
      await engine?.close();
    });

    it('builds the same prompt ids and spans', async () => {
      const bundle = await loadBundle(dir);
      const ctx = { manifest: bundle.manifest, tokenizer: loadTokenizer(bundle.tokenizerFile) };
      CASES.forEach((c, ci) => {
        c.tasks.forEach((raw, ti) => {
          const task = Task.parse(raw);
          const prompts = task.type === 'words' ? wordPrompts(ctx, task.phrases.map((p) => p.text), '/t') : [sentencePrompt(ctx, task.sentence, '/t')];
          const expected = ref.cases[ci]!.trace.tasks[ti]!.prompts;
          expect(prompts.map((p) => ({ input_ids: p.inputIds, image_index: p.imageIndex, phrase_spans: p.spans })))
            .toEqual(expected.map((p) => ({ input_ids: p.input_ids, image_index: p.image_index, phrase_spans: p.phrase_spans })));
        });
      });
      expect(CASES[2]!.tasks.length).toBeGreaterThan(0);
      expect(ref.cases[2]!.trace.tasks[0]!.prompts.length).toBeGreaterThan(1); // the vocabulary really was chunked
    });

    CASES.forEach((c, ci) => {
      it(`case ${c.id}: same tokens, raw outputs, detections`, async () => {
        const expected = ref.cases[ci]!;
        const job = `parity-${c.id}`;
        try {
          const sizes = await engine.preprocess(job, images.get(c.id)!);
          expect([sizes.original.height, sizes.original.width]).toEqual(expected.trace.geometry.orig_hw);
          expect([sizes.valid.height, sizes.valid.width]).toEqual(expected.trace.geometry.valid_hw);
          await engine.vision([job]);
          for (const [ti, raw] of c.tasks.entries()) {
            const task = Task.parse(raw);
            const trace = expected.trace.tasks[ti]!;
            const [lang] = await engine.language([{ jobId: job, taskIndex: ti, task, caption: c.caption }]);
            expect(lang!.generatedIds, `task ${ti} generated ids`).toEqual(trace.generated_ids ?? []);
            expect(lang!.caption, `task ${ti} caption`).toBe(trace.caption);
            await engine.perception([{ jobId: job, taskIndex: ti, task }]);
            const rawOut = engine.rawOutputs(job, ti)!;
            const flat = (v: unknown) => (v as number[]).flat(Infinity as 1) as number[];
            expect(maxRelDiff(rawOut.logits, flat(trace.raw.pred_logits.values)), `task ${ti} pred_logits`).toBeLessThan(rawTol);
            expect(maxRelDiff(rawOut.boxes, flat(trace.raw.pred_boxes.values)), `task ${ti} pred_boxes`).toBeLessThan(rawTol);
            expect(maxRelDiff(rawOut.masks, flat(trace.raw.pred_masks.values)), `task ${ti} pred_masks`).toBeLessThan(rawTol);
            const result = engine.postprocess(job, ti, task);
            expect(compareTask(result, expected.result.tasks[ti]!, tol), `task ${ti} (${task.type}/${task.mode})`).toEqual([]);
          }
        } finally {
          engine.release(job);
        }
        expect(engine.activeJobs()).toBe(0);
      }, 180_000);
    });

    it.runIf(variant === 'paper')('covers speculative caption decoding with a partly rejected draft', () => {
      // a later task's greedy caption shares a prefix with the earlier one and then differs: the draft was cut
      const ids = ref.cases.map((c) => c.trace.tasks.map((t) => t.generated_ids ?? []));
      const partly = ids.some((tasks) => tasks.slice(1).some((t) => t.length > 0 && t[0] === tasks[0]![0] && t.join() !== tasks[0]!.join()));
      expect(partly).toBe(true);
    });

    it('gives the same PerceptionResult through the threaded pipeline', async () => {
      const pipeline = await createOnnxPipeline({ modelDir: dir, provider: 'cpu', precision });
      try {
        const c = CASES[0]!;
        const expected = ref.cases[0]!.result;
        const stages: string[] = [];
        const result = await pipeline.run(
          { jobId: 'thread-job', image: images.get(c.id)!, tasks: c.tasks.map((t) => Task.parse(t)), caption: c.caption },
          { onStage: (s) => void stages.push(s), shouldStop: () => false },
        );
        expect(stages).toEqual(['preprocess', 'vision', 'language', 'perception', 'postprocess']);
        expect(result.caption).toBe(expected.caption);
        expect(result.image).toEqual(expected.image);
        expect(result.model).toEqual(expected.model);
        expect(result.provider).toBe('cpu');
        expect(pipeline.info().generation).toBe('decoder_generate');
        expect(pipeline.info().precision).toBe(precision);
        result.tasks.forEach((t, i) => expect(compareTask(t, expected.tasks[i]!, tol), `task ${i}`).toEqual([]));
        // one entry per stage, then the batch each batched stage ran the job in: alone without BATCH_MAX
        expect(Object.keys(result.timings_ms)).toEqual([...stages, 'vision_batch', 'language_batch', 'perception_batch']);
        expect([result.timings_ms.vision_batch, result.timings_ms.language_batch, result.timings_ms.perception_batch]).toEqual([1, 1, 1]);
      } finally {
        await pipeline.close();
      }
    }, 180_000);
  });
}

// keep the reference's own file readable when a comparison fails
export const referenceFile = (variant: string) => readFileSync(path.resolve(`.data/test/parity-${variant}/reference.json`), 'utf8');

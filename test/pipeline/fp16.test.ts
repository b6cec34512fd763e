// fp16 bundles served: which graphs the worker loads (fp16 on CUDA when the bundle has them, fp32 on CPU or when
// asked), and the float16 conversions behind the float32 face of an fp16 graph (against numpy). parity.test.ts
// holds the fp16 engine to the fp16 Python reference (the same tokens, raw outputs and results); the reference's
// fp16 against its fp32 is model/tests/test_export_fp16.py.
import { beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../../contracts/task.js';
import { loadBundle } from '../../workers/pipeline/bundle.js';
import { PipelineEngine } from '../../workers/pipeline/engine.js';
import { choosePrecision, fromFloat16, toFloat16 } from '../../workers/pipeline/precision.js';
import { createSessions } from '../../workers/pipeline/sessions.js';
import type { RawOutputs } from '../../workers/pipeline/postprocess/types.js';
import { ensureBundle } from './bundles.js';
import { maxRelDiff } from './compare.js';
import { syntheticPng } from './images.js';
import { runPython } from './python.js';

describe('float16 conversions', () => {
  // edge cases: signed zeros, the subnormal range, ties to even, the largest finite, overflow, inf, NaN
  const special = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-9,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, 1 / 3, Infinity, -Infinity, NaN];
  const values = Float32Array.from([...special, ...Array.from({ length: 20_000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 13) - 6))]);

  it('rounds float32 to float16 bits exactly as numpy does, and reads every bit pattern back as numpy does', () => {
    const code = `
import sys, json, numpy as np
values = np.frombuffer(sys.stdin.buffer.read(), np.float32)
bits = values.astype(np.float16).view(np.uint16)
every = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
print(json.dumps({"bits": bits.tolist(), "every": every.tolist()}))
`;
    const py = JSON.parse(runPython(code, Buffer.from(values.buffer))) as { bits: number[]; every: number[] };
    expect(Array.from(toFloat16(values))).toEqual(py.bits);
    const all = fromFloat16(Uint16Array.from({ length: 65536 }, (_, i) => i));
    // NaN payloads may differ; compare NaN-ness there and the float32 bits elsewhere
    const bitsOf = new Uint32Array(all.buffer);
    py.every.forEach((want, i) => {
      if (Number.isNaN(all[i])) expect(new Float32Array(Uint32Array.of(want).buffer)[0]).toBeNaN();
      else expect(bitsOf[i], `bit pattern ${i}`).toBe(want);
    });
  });
});

describe('the precision a worker serves', () => {
  let fp16Dir: string;
  let fp32Dir: string;

  beforeAll(() => {
    fp16Dir = ensureBundle('paper-fp16');
    fp32Dir = ensureBundle('paper');
  }, 600_000);

  it('is fp16 on CUDA when the bundle has fp16 graphs and fp32 otherwise, unless asked', async () => {
    const withHalf = (await loadBundle(fp16Dir, { verifyHashes: false })).manifest;
    const without = (await loadBundle(fp32Dir, { verifyHashes: false })).manifest;
    expect(choosePrecision(withHalf, 'cuda', 'auto')).toBe('fp16');
    expect(choosePrecision(withHalf, 'cpu', 'auto')).toBe('fp32');
    expect(choosePrecision(without, 'cuda', 'auto')).toBe('fp32');
    expect(choosePrecision(withHalf, 'cuda', 'fp32')).toBe('fp32');
    expect(choosePrecision(withHalf, 'cpu', 'fp16')).toBe('fp16');
    expect(() => choosePrecision(without, 'cpu', 'fp16')).toThrow(/has no fp16 graphs \(export it with --fp16\)/);
  });

  it('falls back to CPU with the fp32 graphs when CUDA cannot load, and says so', async () => {
    const warnings: object[] = [];
    const bundle = await loadBundle(fp16Dir, { verifyHashes: false });
    const models = await createSessions(bundle, { provider: 'cuda', logger: { info: () => undefined, warn: (o) => void warnings.push(o) } });
    try {
      // this machine has no CUDA provider (the CPU build of onnxruntime-node); on a GPU machine it stays fp16 on cuda
      expect([models.provider, models.precision]).toEqual(models.fallbackReason ? ['cpu', 'fp32'] : ['cuda', 'fp16']);
      if (models.fallbackReason) expect(warnings).toHaveLength(1);
    } finally {
      await models.release();
    }
  });

  it('loads the fp16 graphs when asked on CPU, reports it, and they compute at fp16', async () => {
    // the same job at both precisions: outputs close (fp16 tolerance) but not identical, so fp16 really ran
    const task = Task.parse({ type: 'sentence', sentence: 'the red square', mode: 'single' });
    const image = await syntheticPng(64, 48, 7);
    const raw: RawOutputs[] = [];
    for (const precision of ['fp32', 'fp16'] as const) {
      const engine = await PipelineEngine.create({ modelDir: fp16Dir, provider: 'cpu', precision });
      try {
        expect(engine.info().precision).toBe(precision);
        await engine.preprocess('job', image);
        await engine.vision(['job']);
        await engine.language([{ jobId: 'job', taskIndex: 0, task, caption: false }]);
        await engine.perception([{ jobId: 'job', taskIndex: 0, task }]);
        raw.push(engine.rawOutputs('job', 0)!);
      } finally {
        await engine.close();
      }
    }
    const [f32, f16] = raw as [RawOutputs, RawOutputs];
    expect(maxRelDiff(f16.logits, f32.logits)).toBeGreaterThan(0);
    expect(maxRelDiff(f16.logits, f32.logits)).toBeLessThan(2e-2);
  });

});

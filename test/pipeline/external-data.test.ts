// A bundle whose decoder keeps its weights in external data (decoder_model_merged.onnx + .onnx.data, as every
// graph over protobuf's 2 GB limit is exported, e.g. the full preset's decoder): the worker loads it, verifies the
// data file like any other, and answers exactly as from the same weights embedded. CI-sized: the tiny decoder is
// re-saved with all its tensors external (`onnx.save_model(save_as_external_data=True)`).
import { cpSync, mkdtempSync, rmSync, unlinkSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../../contracts/task.js';
import { loadBundle } from '../../workers/pipeline/bundle.js';
import { createOnnxPipeline } from '../../workers/pipeline/pipeline.js';
import type { PerceptionResult } from '../../contracts/result.js';
import { ensureBundle } from './bundles.js';
import { syntheticPng } from './images.js';
import { CASES, caseSeed } from './parity-cases.js';
import { runPython } from './python.js';

let tmp: string;
let embedded: string;
let external: string;

beforeAll(() => {
  embedded = ensureBundle('paper');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mvp-external-'));
  external = path.join(tmp, 'bundle');
  cpSync(embedded, external, { recursive: true });
  runPython(`
import json, onnx
from pathlib import Path
from mvp_lm.export import file_entry
d = Path(${JSON.stringify(external)})
onnx.save_model(onnx.load(str(d / "decoder_model_merged.onnx")), str(d / "decoder_model_merged.onnx"),
                save_as_external_data=True, all_tensors_to_one_file=True, location="decoder_model_merged.onnx.data",
                size_threshold=0)
m = json.loads((d / "manifest.json").read_text())
for name in ("decoder_model_merged.onnx", "decoder_model_merged.onnx.data"):
    m["files"][name] = file_entry(d / name)
(d / "manifest.json").write_text(json.dumps(m, indent=2))
`);
}, 600_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function run(dir: string): Promise<PerceptionResult> {
  const c = CASES[0]!;
  const pipeline = await createOnnxPipeline({ modelDir: dir, provider: 'cpu' });
  try {
    return await pipeline.run(
      { jobId: 'external', image: await syntheticPng(c.size[0], c.size[1], caseSeed(0)), tasks: c.tasks.map((t) => Task.parse(t)), caption: true },
      { onStage: () => undefined, shouldStop: () => false },
    );
  } finally {
    await pipeline.close();
  }
}

describe('a decoder in external data', () => {
  it('is really external: the graph file holds no weights, the data file does', async () => {
    const bundle = await loadBundle(external);
    const files = bundle.manifest.files;
    expect(files['decoder_model_merged.onnx.data']!.bytes).toBeGreaterThan(50 * files['decoder_model_merged.onnx']!.bytes);
  });

  it('answers exactly as the same weights embedded, captions included', async () => {
    const [want, got] = [await run(embedded), await run(external)];
    expect(got.caption).toBe(want.caption);
    expect(got.tasks).toEqual(want.tasks);
  }, 300_000);

  it('is verified like any bundle file: a missing data file is named', async () => {
    const broken = path.join(tmp, 'broken');
    cpSync(external, broken, { recursive: true });
    unlinkSync(path.join(broken, 'decoder_model_merged.onnx.data'));
    expect(existsSync(path.join(broken, 'decoder_model_merged.onnx'))).toBe(true);
    await expect(loadBundle(broken)).rejects.toThrow(/missing file decoder_model_merged\.onnx\.data/);
  });
});

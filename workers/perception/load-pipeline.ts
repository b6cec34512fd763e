// Chooses the pipeline at start-up: the ONNX pipeline (workers/pipeline/index.ts, createOnnxPipeline) on the
// model bundle in MODEL_DIR, or — for tests only — the module named by PIPELINE_MODULE, which must export
// createPipeline(): Promise<PerceptionPipeline>.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PerceptionPipeline } from '../pipeline/types.js';

// Resolved at run time: the ONNX pipeline is built in workers/pipeline/ and may not exist in every checkout.
const ONNX_PIPELINE_MODULE = '../pipeline/index.js';

export interface PipelineChoice {
  modelDir?: string;
  /** 'cpu' | 'cuda' | 'auto' (cuda when its provider loads, else cpu). */
  provider?: string;
  testModule?: string;
}

export async function loadPipeline(choice: PipelineChoice): Promise<PerceptionPipeline> {
  if (choice.testModule) {
    const mod = (await import(pathToFileURL(path.resolve(choice.testModule)).href)) as {
      createPipeline?: () => Promise<PerceptionPipeline>;
    };
    if (typeof mod.createPipeline !== 'function') {
      throw new Error(`PIPELINE_MODULE ${choice.testModule} does not export createPipeline()`);
    }
    return mod.createPipeline();
  }
  if (!choice.modelDir) throw new Error('MODEL_DIR is not set: point it at an exported model bundle (model/BUNDLE.md)');
  let mod: { createOnnxPipeline?: (opts: { bundleDir: string; provider: string }) => Promise<PerceptionPipeline> };
  try {
    mod = await import(ONNX_PIPELINE_MODULE);
  } catch (e) {
    throw new Error(`the ONNX pipeline (workers/pipeline/index.ts) could not be loaded: ${(e as Error).message}`);
  }
  if (typeof mod.createOnnxPipeline !== 'function') {
    throw new Error('workers/pipeline/index.ts does not export createOnnxPipeline(opts)');
  }
  return mod.createOnnxPipeline({ bundleDir: choice.modelDir, provider: choice.provider ?? 'auto' });
}

// perception_decoder.onnx on tasks' vision outputs and pooled text embeddings, a batch of one group per run.
import * as ort from 'onnxruntime-node';
import type { Manifest } from './manifest.js';
import { floats, type GraphSession } from './precision.js';
import type { RawOutputs } from './postprocess/types.js';
import { perceptionGroup } from './perception-group.js';
import { concatFloats, stack } from './tensors.js';

/** vision_encoder.onnx outputs the perception decoder reads (image_embeds goes to the language side). */
export const VISION_FOR_PERCEPTION = ['memory', 'output_memory', 'output_proposals', 'proposal_valid', 'mask_features'] as const;
export type VisionOutputs = Record<(typeof VISION_FOR_PERCEPTION)[number], ort.Tensor>;

export interface PerceptionRequest {
  vision: VisionOutputs;
  text: { textEmbeds: Float32Array; numPhrases: number; perHidden: Float32Array | null };
  isSentence: boolean;
}

/** perception_decoder.onnx on a batch of tasks of one group (any images): one run, outputs split per task. */
export async function runPerception(session: GraphSession, manifest: Manifest, requests: PerceptionRequest[]): Promise<RawOutputs[]> {
  const h = manifest.dims.hidden_size;
  const first = requests[0]!;
  const group = perceptionGroup(first.isSentence, first.text.numPhrases);
  if (requests.some((r) => perceptionGroup(r.isSentence, r.text.numPhrases) !== group)) throw new Error('runPerception: one batch holds tasks of one kind and phrase count');
  const b = requests.length;
  const p = first.text.numPhrases;
  const feeds: Record<string, ort.Tensor> = {
    ...Object.fromEntries(VISION_FOR_PERCEPTION.map((k) => [k, stack(requests.map((r) => r.vision[k]))])),
    text_embeds: new ort.Tensor('float32', concatFloats(requests.map((r) => r.text.textEmbeds)), [b, p, h]),
    is_sentence: new ort.Tensor('bool', Uint8Array.of(first.isSentence ? 1 : 0), [1]),
  };
  if (manifest.variant === 'paper') {
    if (requests.some((r) => !r.text.perHidden)) throw new Error('paper variant: the perception decoder needs the <PER> hidden state');
    feeds.per_hidden = new ort.Tensor('float32', concatFloats(requests.map((r) => r.text.perHidden!)), [b, h]);
  }
  const out = await session.run(feeds);
  const logits = out.pred_logits!;
  const masks = out.pred_masks!;
  const [all, allMasks, allBoxes] = [floats(logits), floats(masks), floats(out.pred_boxes!)];
  const part = (data: Float32Array, r: number) => data.slice((r * data.length) / b, ((r + 1) * data.length) / b);
  return requests.map((_, r) => ({
    logits: b === 1 ? all : part(all, r),
    masks: b === 1 ? allMasks : part(allMasks, r),
    boxes: b === 1 ? allBoxes : part(allBoxes, r),
    numQueries: logits.dims[1]!,
    numPhrases: logits.dims[2]!,
    maskSize: masks.dims[3]!,
  }));
}

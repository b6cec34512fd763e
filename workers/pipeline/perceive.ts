// perception_decoder.onnx on one image's vision outputs and one task's pooled text embeddings.
import * as ort from 'onnxruntime-node';
import type { Manifest } from './manifest.js';
import { floats, type GraphSession } from './precision.js';
import type { RawOutputs } from './postprocess/types.js';

/** vision_encoder.onnx outputs the perception decoder reads (image_embeds goes to the language side). */
export const VISION_FOR_PERCEPTION = ['memory', 'output_memory', 'output_proposals', 'proposal_valid', 'mask_features'] as const;
export type VisionOutputs = Record<(typeof VISION_FOR_PERCEPTION)[number], ort.Tensor>;

export async function runPerception(
  session: GraphSession,
  manifest: Manifest,
  vision: VisionOutputs,
  text: { textEmbeds: Float32Array; numPhrases: number; perHidden: Float32Array | null },
  isSentence: boolean,
): Promise<RawOutputs> {
  const h = manifest.dims.hidden_size;
  const feeds: Record<string, ort.Tensor> = {
    ...vision,
    text_embeds: new ort.Tensor('float32', text.textEmbeds, [1, text.numPhrases, h]),
    is_sentence: new ort.Tensor('bool', Uint8Array.of(isSentence ? 1 : 0), [1]),
  };
  if (manifest.variant === 'paper') {
    if (!text.perHidden) throw new Error('paper variant: the perception decoder needs the <PER> hidden state');
    feeds.per_hidden = new ort.Tensor('float32', text.perHidden, [1, h]);
  }
  const out = await session.run(feeds);
  const logits = out.pred_logits!;
  const masks = out.pred_masks!;
  return {
    logits: floats(logits),
    masks: floats(masks),
    boxes: floats(out.pred_boxes!),
    numQueries: logits.dims[1]!,
    numPhrases: logits.dims[2]!,
    maskSize: masks.dims[3]!,
  };
}

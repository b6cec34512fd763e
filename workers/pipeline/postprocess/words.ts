// Word tasks, instance and detection modes: the top-k (query, phrase) pairs over the first K queries, no NMS.
// instance: score = class prob × mean mask prob inside the mask; detection: score = class prob.
import type { Detection, TaskResult } from '../../../contracts/result.js';
import type { WordsTask } from '../../../contracts/task.js';
import { softmaxRows } from '../numerics.js';
import { detection, roundHalfEven, scoredMask, type ScoredMask } from './common.js';
import { boxToOriginal, MaskResizer } from './geometry.js';
import type { PostprocessConstants, RawOutputs } from './types.js';

export function wordsTopK(
  raw: RawOutputs,
  task: WordsTask,
  resizer: MaskResizer,
  c: PostprocessConstants,
  numK: number,
): TaskResult['detections'] {
  const withMaskScore = task.mode === 'instance';
  const cols = raw.numPhrases;
  const phrases = cols - 1; // background dropped
  const probs = softmaxRows(raw.logits, numK, cols);
  const flat = new Float32Array(numK * phrases);
  for (let q = 0; q < numK; q++) flat.set(probs.subarray(q * cols, q * cols + phrases), q * phrases);
  const order = Array.from(flat.keys())
    .sort((a, b) => flat[b]! - flat[a]! || a - b)
    .slice(0, Math.min(task.top_k, flat.length));

  // score = class prob × mean mask prob ≤ class prob, so a pair whose class prob is below the threshold is
  // dropped whatever its mask: only queries of the other pairs need their mask at the original size
  const needMasks = withMaskScore || task.outputs.includes('masks');
  const masks = new Map<number, ScoredMask>();
  if (needMasks) {
    for (const i of order) {
      const q = Math.floor(i / phrases);
      if (flat[i]! >= task.score_threshold && !masks.has(q)) masks.set(q, scoredMask(resizer, raw.masks, q, c.mask_logit_threshold));
    }
  }
  const dets: Detection[] = [];
  for (const idx of order) {
    const q = Math.floor(idx / phrases);
    const p = idx % phrases;
    if (flat[idx]! < task.score_threshold) continue;
    const m = masks.get(q);
    const score = flat[idx]! * (withMaskScore ? m!.inside : 1);
    if (score < task.score_threshold) continue;
    const box = boxToOriginal(raw.boxes, q, resizer.geom);
    const area = m ? m.area : roundHalfEven(Math.max(box[2] - box[0], 0) * Math.max(box[3] - box[1], 0));
    dets.push(
      detection(p, task.phrases[p]!.text, score, task.outputs, {
        box,
        mask: m?.rle, // a query paired with several phrases is encoded once
        area,
      }),
    );
  }
  // stable: equal scores keep the top-k order
  return dets.sort((a, b) => b.score - a.score);
}

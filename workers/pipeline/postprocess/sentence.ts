// Sentence tasks over the first K queries. single (RES/REC): the query with the best sigmoid(score) × mean mask
// prob, with its box-head box. multi (gRefCOCO): "no target" when the best sigmoid(score) is below the manifest
// threshold, otherwise the union of the masks of the queries above the score threshold (at least the best one).
import type { Detection } from '../../../contracts/result.js';
import type { SentenceTask } from '../../../contracts/task.js';
import { sigmoid } from '../numerics.js';
import { detection, orMask, scoredMask, type ScoredMask } from './common.js';
import { boxToOriginal, maskBox, MaskResizer } from './geometry.js';
import type { PostprocessConstants, RawOutputs } from './types.js';

function sentenceScores(raw: RawOutputs, numK: number): Float32Array {
  const s = new Float32Array(numK);
  for (let q = 0; q < numK; q++) s[q] = sigmoid(raw.logits[q * raw.numPhrases]!);
  return s;
}

function maxLogit(raw: RawOutputs, q: number): number {
  const n = raw.maskSize * raw.maskSize;
  let max = -Infinity;
  for (let i = q * n; i < (q + 1) * n; i++) max = Math.max(max, raw.masks[i]!);
  return max;
}

export function sentenceSingle(raw: RawOutputs, task: SentenceTask, resizer: MaskResizer, c: PostprocessConstants, numK: number): Detection[] {
  const s = sentenceScores(raw, numK);
  // total = score × mean mask prob ≤ score: visiting queries by falling score, those scoring below the best total
  // so far cannot win and their masks are never resized. Nor are those whose score × the sigmoid of their largest
  // mask logit (a resized logit never exceeds it; 1e-6 margins for rounding) is below it. Ties go to the lower
  // query index, as in the reference.
  const byScore = [...s.keys()].sort((a, b) => s[b]! - s[a]! || a - b);
  let best = -1;
  let bestScore = -Infinity;
  let bestMask: ScoredMask | undefined;
  for (const q of byScore) {
    if (s[q]! < bestScore) break;
    const top = maxLogit(raw, q);
    if (s[q]! * sigmoid(top + 1e-6 * Math.max(1, Math.abs(top))) * (1 + 1e-6) < bestScore) continue;
    const m = scoredMask(resizer, raw.masks, q, c.mask_logit_threshold, false); // only the best one is encoded
    const total = Math.fround(s[q]! * m.inside);
    if (total > bestScore || (total === bestScore && q < best)) {
      best = q;
      bestScore = total;
      bestMask = m;
    }
  }
  return [
    detection(0, task.sentence, bestScore, task.outputs, {
      box: boxToOriginal(raw.boxes, best, resizer.geom),
      mask: bestMask!.rle,
      area: bestMask!.area,
    }),
  ];
}

export function sentenceMulti(
  raw: RawOutputs,
  task: SentenceTask,
  resizer: MaskResizer,
  c: PostprocessConstants,
  numK: number,
): { detections: Detection[]; noTarget: boolean } {
  const s = sentenceScores(raw, numK);
  let best = 0;
  for (let q = 1; q < numK; q++) if (s[q]! > s[best]!) best = q;
  if (s[best]! < c.no_target_threshold) return { detections: [], noTarget: true };
  const threshold = task.score_threshold ?? c.generalised_sentence_threshold;
  let chosen = [...s.keys()].filter((q) => s[q]! > threshold);
  if (chosen.length === 0) chosen = [best];
  const { original } = resizer.geom;
  const union = new Uint8Array(resizer.pixels);
  for (const q of chosen) orMask(resizer, raw.masks, q, c.mask_logit_threshold, union);
  let area = 0;
  for (let i = 0; i < union.length; i++) area += union[i]!;
  const detections = [
    detection(0, task.sentence, s[best]!, task.outputs, {
      box: maskBox(union, original),
      mask: { data: union, height: original.height, width: original.width },
      area,
    }),
  ];
  return { detections, noTarget: false };
}

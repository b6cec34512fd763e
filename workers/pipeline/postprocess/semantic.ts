// Word tasks, semantic mode: Σ_q softmax(q)[c] · sigmoid(mask_q) over ALL queries (thing and stuff queries, as
// Mask2Former does; training matches stuff targets to the stuff queries only), argmax per pixel, one region per
// phrase present. Computed in row bands so the C×band accumulator stays bounded.
import type { TaskResult } from '../../../contracts/result.js';
import type { WordsTask } from '../../../contracts/task.js';
import { sigmoid, softmaxRows } from '../numerics.js';
import { encodeRle } from '../rle.js';
import { MaskResizer } from './geometry.js';
import type { RawOutputs } from './types.js';

const ACCUMULATOR_FLOATS = 1 << 24; // 64 MiB

export function semantic(raw: RawOutputs, task: WordsTask, resizer: MaskResizer): NonNullable<TaskResult['semantic']> {
  const cols = raw.numPhrases;
  const classes = cols - 1;
  const numQ = raw.numQueries;
  const probs = softmaxRows(raw.logits, numQ, cols);
  const { height: h, width: w } = resizer.geom.original;
  const label = new Int32Array(h * w);
  const bandRows = Math.max(1, Math.min(h, Math.floor(ACCUMULATOR_FLOATS / (classes * w))));
  const acc = new Float32Array(classes * bandRows * w);
  const logits = new Float32Array(bandRows * w);
  for (let r0 = 0; r0 < h; r0 += bandRows) {
    const r1 = Math.min(h, r0 + bandRows);
    const n = (r1 - r0) * w;
    acc.fill(0);
    for (let q = 0; q < numQ; q++) {
      resizer.logits(raw.masks, q, logits, { r0, r1, c0: 0, c1: w });
      const pq = q * cols;
      for (let i = 0; i < n; i++) {
        const s = sigmoid(logits[i]!);
        for (let k = 0; k < classes; k++) acc[k * n + i]! += probs[pq + k]! * s;
      }
    }
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let k = 1; k < classes; k++) if (acc[k * n + i]! > acc[best * n + i]!) best = k;
      label[r0 * w + i] = best;
    }
  }
  const regions: NonNullable<TaskResult['semantic']> = [];
  const mask = new Uint8Array(h * w);
  for (let k = 0; k < classes; k++) {
    let area = 0;
    for (let i = 0; i < label.length; i++) area += mask[i] = label[i] === k ? 1 : 0;
    if (area === 0) continue;
    regions.push({ phrase_index: k, phrase: task.phrases[k]!.text, mask: encodeRle({ data: mask, height: h, width: w }), area });
  }
  return regions;
}

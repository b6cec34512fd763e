// Small numeric helpers of post-processing, float32 like the PyTorch reference where ranking depends on it.
import type { Detection, Rle } from '../../../contracts/result.js';
import { encodeRle, type BinaryMask } from '../rle.js';
import { MaskResizer, sigmoid } from './geometry.js';
import type { Box, Outputs } from './types.js';

/** Row-wise softmax of the first `rows` rows of a [*, cols] matrix, in float32. */
export function softmaxRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[o + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += (out[o + c] = Math.exp(x[o + c]! - max));
    for (let c = 0; c < cols; c++) out[o + c]! /= sum;
  }
  return out;
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export interface ScoredMask {
  mask: Uint8Array;
  area: number;
  /** Mean sigmoid probability inside the mask (0 for an empty mask). */
  inside: number;
}

let scratch = new Float32Array(0);
/** A reused buffer for one query's logits (post-processing runs one query at a time). */
export function logitsBuffer(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(n);
  return scratch;
}

/**
 * Binary mask (logit > threshold) of one query at the original size and the mean probability inside it.
 * Only the window where the logits can exceed the threshold is resized; the rest is outside the mask.
 */
export function scoredMask(resizer: MaskResizer, masks: Float32Array, q: number, threshold: number): ScoredMask {
  const { width: w } = resizer.geom.original;
  const mask = new Uint8Array(resizer.pixels);
  const win = resizer.support(masks, q, threshold);
  if (!win) return { mask, area: 0, inside: 0 };
  const ww = win.c1 - win.c0;
  const logits = resizer.logits(masks, q, logitsBuffer((win.r1 - win.r0) * ww), win);
  let area = 0;
  let sum = 0;
  for (let r = win.r0; r < win.r1; r++) {
    const o = (r - win.r0) * ww;
    const m = r * w + win.c0;
    for (let c = 0; c < ww; c++) {
      const v = logits[o + c]!;
      if (v > threshold) {
        mask[m + c] = 1;
        area++;
        sum += sigmoid(v);
      }
    }
  }
  return { mask, area, inside: Math.fround(Math.fround(sum) / Math.fround(area + 1e-6)) };
}

export function detection(
  phraseIndex: number,
  phrase: string,
  score: number,
  outputs: Outputs,
  parts: { box?: Box; mask?: BinaryMask | (() => Rle); area: number; stuff?: boolean },
): Detection {
  const mask = parts.mask && outputs.includes('masks') ? (typeof parts.mask === 'function' ? parts.mask() : encodeRle(parts.mask)) : undefined;
  return {
    phrase_index: phraseIndex,
    phrase,
    score,
    ...(outputs.includes('boxes') && parts.box ? { box: parts.box } : {}),
    ...(mask ? { mask } : {}),
    area: parts.area,
    ...(parts.stuff !== undefined ? { stuff: parts.stuff } : {}),
  };
}

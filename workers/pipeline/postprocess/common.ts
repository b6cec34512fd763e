// What the post-processing modes share: Python's rounding, the one-pass mask scan (scoredMask), mask unions and
// detections.
import type { Detection, Rle } from '../../../contracts/result.js';
import { sigmoid } from '../numerics.js';
import { encodeRle, pushRowChanges, Transitions, type BinaryMask } from '../rle.js';
import { MaskResizer } from './geometry.js';
import type { Box, Outputs } from './types.js';

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export interface ScoredMask {
  area: number;
  /** Mean sigmoid probability inside the mask (0 for an empty mask). */
  inside: number;
  /** The mask's COCO RLE, encoded on first use. */
  rle: () => Rle;
}

// One row of logits, two rows of the binary mask (4-byte aligned, zero padded: compared 4 pixels at a time) and
// the bottom row, reused by every query (post-processing runs one query at a time).
interface RowBuffers {
  line: Float32Array;
  mask: Uint8Array;
  words: Int32Array;
  bottom: Uint8Array;
}
let buffers: RowBuffers | undefined;

function rowBuffers(n: number): RowBuffers {
  if (!buffers || buffers.line.length < n) {
    const mask = new Uint8Array(2 * ((n + 3) & ~3));
    buffers = { line: new Float32Array(n), mask, words: new Int32Array(mask.buffer), bottom: new Uint8Array(n) };
  }
  return buffers;
}

/**
 * Binary mask (logit > threshold) of one query at the original size, its area, the mean probability inside it
 * and its RLE, in one pass over the rows of the window, each only where the logits can exceed the threshold (the
 * rest is outside the mask: MaskResizer.support, rowSpans). The mask itself is never stored: each row is compared
 * with the one above it for the RLE's transitions (rle.ts), and only the sigmoid of pixels inside the mask is
 * computed. Without `encode` (for masks that are rarely output) no transitions are kept and the RLE, if asked
 * for, costs a second scan.
 */
export function scoredMask(resizer: MaskResizer, masks: Float32Array, q: number, threshold: number, encode = true): ScoredMask {
  const { height: h, width: w } = resizer.geom.original;
  const runs = encode ? new Transitions(h, w) : null;
  let rle: Rle | undefined;
  const result = { area: 0, inside: 0, rle: () => (rle ??= runs ? runs.toRle() : scoredMask(resizer, masks, q, threshold).rle()) };
  const win = resizer.support(masks, q, threshold);
  if (!win) return result;
  const { r0, r1, c0, c1 } = win;
  const ww = c1 - c0;
  const rows = resizer.rows(masks, q, win);
  const spans = resizer.rowSpans(masks, q, threshold, win);
  const { line, mask, words, bottom } = rowBuffers(ww);
  const perRow = (ww + 3) >>> 2;
  // row 0 follows the bottom row of the previous column in column-major order
  bottom.fill(0, 0, ww);
  if (runs && r1 === h) {
    const x0 = spans[2 * (h - 1 - r0)]!, x1 = spans[2 * (h - 1 - r0) + 1]!;
    rows.row(h - 1, line, 0, x0, x1);
    for (let c = x0; c < x1; c++) bottom[c] = line[c]! > threshold ? 1 : 0;
  }
  const topRow = (cur: number, out: Transitions) => {
    for (let x = c0; x < Math.min(c1 + 1, w); x++) {
      const v = x < c1 && cur >= 0 ? mask[cur + x - c0]! : 0;
      const before = x > c0 ? bottom[x - 1 - c0]! : 0;
      if (v !== before) out.push(x, 0);
    }
  };
  if (runs && r0 > 0) topRow(-1, runs);
  mask.fill(0); // the row above the window is empty
  let cur = 0; // word offset of the current row; the previous one is the other
  let area = 0;
  let sum = 0;
  for (let y = r0; y < r1; y++) {
    const x0 = spans[2 * (y - r0)]!, x1 = spans[2 * (y - r0) + 1]!;
    const o = cur * 4;
    mask.fill(0, o, o + ww);
    if (x0 < x1) rows.row(y, line, 0, x0, x1);
    for (let c = x0; c < x1; c++) {
      const v = line[c]!;
      if (v > threshold) {
        mask[o + c] = 1;
        area++;
        sum += sigmoid(v);
      }
    }
    const prev = perRow - cur;
    if (runs && y === 0) topRow(o, runs);
    else if (runs) pushRowChanges(words, cur, prev, perRow, c0, y, runs);
    cur = prev;
  }
  if (runs && r1 < h) {
    // row r1, below the window, is empty
    mask.fill(0, cur * 4, (cur + perRow) * 4);
    pushRowChanges(words, cur, perRow - cur, perRow, c0, r1, runs);
  }
  result.area = area;
  result.inside = Math.fround(Math.fround(sum) / Math.fround(area + 1e-6));
  return result;
}

/** ORs query q's binary mask (logit > threshold) at the original size into the row-major `into`. */
export function orMask(resizer: MaskResizer, masks: Float32Array, q: number, threshold: number, into: Uint8Array): void {
  const win = resizer.support(masks, q, threshold);
  if (!win) return;
  const ww = win.c1 - win.c0;
  const rows = resizer.rows(masks, q, win);
  const spans = resizer.rowSpans(masks, q, threshold, win);
  const { line } = rowBuffers(ww);
  for (let y = win.r0; y < win.r1; y++) {
    const x0 = spans[2 * (y - win.r0)]!, x1 = spans[2 * (y - win.r0) + 1]!;
    if (x0 === x1) continue;
    rows.row(y, line, 0, x0, x1);
    const o = y * resizer.geom.original.width + win.c0;
    for (let c = x0; c < x1; c++) if (line[c]! > threshold) into[o + c] = 1;
  }
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

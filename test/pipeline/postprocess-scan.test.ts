// The one-pass mask scan of post-processing (threshold, area, mean probability and RLE transitions row by row,
// inside the support window and each row's span only) against the plain computation on the full-size logits.
import { describe, expect, it } from 'vitest';
import { orMask, scoredMask } from '../../workers/pipeline/postprocess/common.js';
import { sigmoid } from '../../workers/pipeline/numerics.js';
import { geometryFor, MaskResizer } from '../../workers/pipeline/postprocess/geometry.js';
import { encodeRle, pushRowChanges, Transitions } from '../../workers/pipeline/rle.js';

/** Mask logits of blobs of every size (a blob may be tiny, cover the frame, touch an edge or be absent). */
function blobs(seed: number, numQueries: number, m: number): Float32Array {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const masks = new Float32Array(numQueries * m * m);
  for (let q = 0; q < numQueries; q++) {
    const cx = rand() * m, cy = rand() * m, r = rand() * m * (q % 4 === 0 ? 1.5 : 0.4);
    const noise = q % 3 === 0 ? 3 : 0.3;
    for (let y = 0; y < m; y++) {
      for (let x = 0; x < m; x++) masks[q * m * m + y * m + x] = 4 * (1 - Math.hypot(x - cx, y - cy) / (r + 1e-3)) + noise * (rand() - 0.5);
    }
  }
  return masks;
}

describe('one-pass mask scan', () => {
  it('gives the area, mean probability and RLE of the thresholded full-size logits', () => {
    const sizes: [number, number][] = [[50, 80], [37, 23], [64, 64], [130, 90], [7, 300], [1, 9], [481, 333]];
    let windows = 0;
    let narrower = 0;
    sizes.forEach(([h, w], g) => {
      const m = 16;
      const numQueries = 12;
      const masks = blobs(900 + g, numQueries, m);
      const resizer = new MaskResizer(geometryFor({ height: h, width: w }, 64), m);
      const logits = new Float32Array(h * w);
      for (let q = 0; q < numQueries; q++) {
        resizer.logits(masks, q, logits);
        for (const threshold of [0, 2.5, -1]) {
          const mask = new Uint8Array(h * w);
          let area = 0;
          let sum = 0;
          for (let i = 0; i < h * w; i++) {
            if (logits[i]! <= threshold) continue;
            mask[i] = 1;
            area++;
            sum += sigmoid(logits[i]!);
          }
          const what = `${h}×${w} q ${q} threshold ${threshold}`;
          const scored = scoredMask(resizer, masks, q, threshold);
          expect(scored.area, what).toBe(area);
          expect(scored.inside, what).toBe(Math.fround(Math.fround(sum) / Math.fround(area + 1e-6)));
          expect(scored.rle(), what).toEqual(encodeRle({ data: mask, height: h, width: w }));
          const unencoded = scoredMask(resizer, masks, q, threshold, false);
          expect([unencoded.area, unencoded.inside, unencoded.rle()], what).toEqual([scored.area, scored.inside, scored.rle()]);
          const union = new Uint8Array(h * w);
          orMask(resizer, masks, q, threshold, union);
          expect(Buffer.from(union).equals(Buffer.from(mask)), what).toBe(true);
          const win = resizer.support(masks, q, threshold);
          if (win && (win.r0 > 0 || win.r1 < h || win.c0 > 0 || win.c1 < w)) windows++;
          const spans = win ? resizer.rowSpans(masks, q, threshold, win) : new Int32Array(0);
          for (let i = 0; i < spans.length; i += 2) if (spans[i + 1]! - spans[i]! < win!.c1 - win!.c0) narrower++;
        }
      }
    });
    expect(windows).toBeGreaterThan(20); // partial windows (edges inside the image) were exercised
    expect(narrower).toBeGreaterThan(1000); // and rows scanned on part of the window only
  });
});

describe('pushRowChanges', () => {
  it('finds the same changes comparing 32-bit words as comparing byte by byte', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const perRow = 26;
    const bytes = new Uint8Array(2 * perRow * 4);
    const words = new Int32Array(bytes.buffer);
    const [bytewise, wordwise] = [new Transitions(2, perRow * 4 + 3), new Transitions(2, perRow * 4 + 3)];
    let changes = 0;
    for (let trial = 0; trial < 200; trial++) {
      // sparse and dense differences: words with one differing byte and words with several
      for (let i = 0; i < bytes.length; i++) bytes[i] = rand() < (trial % 2 ? 0.05 : 0.5) ? 1 : 0;
      bytewise.reset(2, perRow * 4 + 3);
      wordwise.reset(2, perRow * 4 + 3);
      for (let x = 0; x < perRow * 4; x++) if (bytes[perRow * 4 + x] !== bytes[x]) bytewise.push(3 + x, 1);
      pushRowChanges(words, perRow, 0, perRow, 3, 1, wordwise);
      const rle = bytewise.toRle();
      expect(wordwise.toRle()).toEqual(rle);
      changes += rle.counts.length;
    }
    expect(changes).toBeGreaterThan(1000);
  });
});

// Geometry shared by preprocessing and post-processing, matching model/mvp_lm/postprocess.py exactly:
// bilinear resizes are torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False);
// mask logits go M×M → S×S, are cropped to the valid region, then go to the original size.

export interface Size {
  height: number;
  width: number;
}

export interface Geometry {
  imageSize: number; // S
  valid: Size; // the resized image inside the padded S×S frame
  original: Size;
}

/** Longer side → S, the other side round-half-up of side·S/max(h,w), in integer arithmetic (as the reference). */
export function validSize(original: Size, imageSize: number): Size {
  const m = Math.max(original.height, original.width);
  const side = (s: number) => Math.max(1, Math.floor((2 * s * imageSize + m) / (2 * m)));
  return { height: side(original.height), width: side(original.width) };
}

export function geometryFor(original: Size, imageSize: number): Geometry {
  return { imageSize, valid: validSize(original, imageSize), original };
}

/** Source taps of one axis: output i reads i0[i] and i1[i] with weights w0[i], w1[i]. */
export interface AxisTaps {
  i0: Int32Array;
  i1: Int32Array;
  w0: Float32Array;
  w1: Float32Array;
}

/** Taps for the first `count` of `nOut` outputs resampled from `nIn` inputs (half-pixel centres, no antialias). */
export function axisTaps(nIn: number, nOut: number, count = nOut): AxisTaps {
  const t: AxisTaps = {
    i0: new Int32Array(count),
    i1: new Int32Array(count),
    w0: new Float32Array(count),
    w1: new Float32Array(count),
  };
  const scale = Math.fround(nIn / nOut);
  for (let i = 0; i < count; i++) {
    const src = Math.max(Math.fround(Math.fround(scale * (i + 0.5)) - 0.5), 0);
    const i0 = Math.min(Math.floor(src), nIn - 1);
    const w = Math.fround(src - i0);
    t.i0[i] = i0;
    t.i1[i] = Math.min(i0 + 1, nIn - 1);
    t.w1[i] = w;
    t.w0[i] = Math.fround(1 - w);
  }
  return t;
}

/**
 * Resizes an inH×inW float plane (row-major) with row taps × column taps, computing output rows [y0, y1) only
 * and writing output row y at dst[(y - y0)·outW]. The taps may cover only the first outputs of a larger virtual
 * output (a crop of its top-left corner). Separable: each source row is resampled horizontally once and reused
 * by every output row that reads it; the arithmetic is torch's, h0·(w0·a + w1·b) + h1·(w0·c + w1·d).
 */
export function resizePlane(
  src: Float32Array,
  inW: number,
  rows: AxisTaps,
  cols: AxisTaps,
  dst: Float32Array,
  y0 = 0,
  y1 = rows.i0.length,
): Float32Array {
  const outW = cols.i0.length;
  const { i0: c0, i1: c1, w0: cw0, w1: cw1 } = cols;
  let a = new Float64Array(outW); // horizontally resampled source row rowA
  let b = new Float64Array(outW); // ... and rowB
  let rowA = -1;
  let rowB = -1;
  const horizontal = (r: number, out: Float64Array) => {
    const o = r * inW;
    for (let x = 0; x < outW; x++) out[x] = cw0[x]! * src[o + c0[x]!]! + cw1[x]! * src[o + c1[x]!]!;
  };
  for (let y = y0; y < y1; y++) {
    const r0 = rows.i0[y]!;
    const r1 = rows.i1[y]!;
    if (r0 !== rowA) {
      if (r0 === rowB) {
        [a, b] = [b, a];
        rowA = rowB;
        rowB = -1;
      } else {
        horizontal(r0, a);
        rowA = r0;
      }
    }
    if (r1 !== rowB) {
      if (r1 === rowA) b.set(a);
      else horizontal(r1, b);
      rowB = r1;
    }
    const h0 = rows.w0[y]!;
    const h1 = rows.w1[y]!;
    const o = (y - y0) * outW;
    for (let x = 0; x < outW; x++) dst[o + x] = h0 * a[x]! + h1 * b[x]!;
  }
  return dst;
}

/** A window of the original image: rows [r0, r1) × columns [c0, c1). */
export interface Window {
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}

/** The outputs [lo, hi] of an axis whose taps read a source index in [s0, s1], or null (taps are monotonic). */
function outputsReading(t: AxisTaps, s0: number, s1: number): [number, number] | null {
  const n = t.i0.length;
  let lo = 0;
  while (lo < n && t.i1[lo]! < s0) lo++;
  let hi = n - 1;
  while (hi >= lo && t.i0[hi]! > s1) hi--;
  return lo <= hi ? [lo, hi] : null;
}

/**
 * Mask logits of one query (M×M) → logits at the original size, via the padded frame and the valid crop.
 * Taps are computed once per image; the scratch buffer is reused for every query. A window of the output can be
 * computed alone (only the intermediate rows it reads are computed), to bound memory or skip empty regions.
 */
export class MaskResizer {
  private readonly padRows: AxisTaps;
  private readonly padCols: AxisTaps;
  private readonly origRows: AxisTaps;
  private readonly origCols: AxisTaps;
  private readonly cropped: Float32Array;
  readonly pixels: number;
  readonly full: Window;

  constructor(readonly geom: Geometry, readonly maskSize: number) {
    const { imageSize: s, valid, original } = geom;
    this.padRows = axisTaps(maskSize, s, valid.height);
    this.padCols = axisTaps(maskSize, s, valid.width);
    this.origRows = axisTaps(valid.height, original.height);
    this.origCols = axisTaps(valid.width, original.width);
    this.cropped = new Float32Array(valid.height * valid.width);
    this.pixels = original.height * original.width;
    this.full = { r0: 0, r1: original.height, c0: 0, c1: original.width };
  }

  /**
   * Logits of query `q` of the [Q,M,M] `masks` at the original size inside `win`, written row by row
   * (width c1 - c0) into `out`.
   */
  logits(masks: Float32Array, q: number, out: Float32Array, win: Window = this.full): Float32Array {
    const m = this.maskSize;
    const plane = masks.subarray(q * m * m, (q + 1) * m * m);
    const first = this.origRows.i0[win.r0]!;
    const last = this.origRows.i1[win.r1 - 1]!;
    const vw = this.geom.valid.width;
    resizePlane(plane, m, this.padRows, this.padCols, this.cropped.subarray(first * vw), first, last + 1);
    const c = this.origCols;
    const cols = win.c0 === 0 && win.c1 === c.i0.length ? c
      : { i0: c.i0.subarray(win.c0, win.c1), i1: c.i1.subarray(win.c0, win.c1), w0: c.w0.subarray(win.c0, win.c1), w1: c.w1.subarray(win.c0, win.c1) };
    return resizePlane(this.cropped, vw, this.origRows, cols, out, win.r0, win.r1);
  }

  /**
   * The window outside which query `q`'s logits cannot exceed `threshold` (a bilinear output never exceeds its
   * largest tap), or null when they exceed it nowhere. A small margin keeps float rounding on the safe side.
   */
  support(masks: Float32Array, q: number, threshold: number): Window | null {
    const m = this.maskSize;
    const base = q * m * m;
    const t = threshold - 1e-6 * Math.max(1, Math.abs(threshold));
    let y0 = m, y1 = -1, x0 = m, x1 = -1;
    for (let y = 0; y < m; y++) {
      const row = base + y * m;
      for (let x = 0; x < m; x++) {
        if (masks[row + x]! > t) {
          if (y < y0) y0 = y;
          y1 = y;
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
        }
      }
    }
    if (y1 < 0) return null;
    const padR = outputsReading(this.padRows, y0, y1);
    const padC = outputsReading(this.padCols, x0, x1);
    if (!padR || !padC) return null;
    const r = outputsReading(this.origRows, padR[0], padR[1]);
    const c = outputsReading(this.origCols, padC[0], padC[1]);
    return r && c ? { r0: r[0], r1: r[1] + 1, c0: c[0], c1: c[1] + 1 } : null;
  }
}

export function sigmoid(x: number): number {
  return Math.fround(1 / (1 + Math.exp(-x)));
}

/** Normalised cx,cy,w,h in the padded frame → absolute x0,y0,x1,y1 in original pixels, clipped to the image. */
export function boxToOriginal(boxes: Float32Array, q: number, geom: Geometry): [number, number, number, number] {
  const { imageSize: s, valid, original } = geom;
  const sx = (s / valid.width) * original.width;
  const sy = (s / valid.height) * original.height;
  const cx = boxes[q * 4]!, cy = boxes[q * 4 + 1]!, w = boxes[q * 4 + 2]!, h = boxes[q * 4 + 3]!;
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  return [
    clip((cx - w / 2) * sx, original.width),
    clip((cy - h / 2) * sy, original.height),
    clip((cx + w / 2) * sx, original.width),
    clip((cy + h / 2) * sy, original.height),
  ];
}

/** Tight x0,y0,x1,y1 (pixel edges) of a row-major binary mask; zeros for an empty one. */
export function maskBox(mask: Uint8Array, size: Size): [number, number, number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < size.height; y++) {
    const row = y * size.width;
    for (let x = 0; x < size.width; x++) {
      if (mask[row + x] === 0) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 + 1, y1 + 1];
}

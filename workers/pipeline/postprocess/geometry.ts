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
 * The output rows of a separable resize, one at a time: each source row is resampled horizontally once (into
 * one of two cached rows) and reused by every output row that reads it; the arithmetic is torch's,
 * h0·(w0·a + w1·b) + h1·(w0·c + w1·d). The column taps may cover only the first outputs of a larger virtual
 * output (a crop of its left side) or any contiguous part of them.
 */
export class RowResampler {
  private a: Float64Array; // horizontally resampled source row rowA
  private b: Float64Array; // ... and rowB
  private rowA = -1;
  private rowB = -1;

  constructor(private readonly src: Float32Array, private readonly inW: number, readonly rows: AxisTaps, readonly cols: AxisTaps) {
    this.a = new Float64Array(cols.i0.length);
    this.b = new Float64Array(cols.i0.length);
  }

  private horizontal(r: number, out: Float64Array): void {
    const { i0, i1, w0, w1 } = this.cols;
    const src = this.src;
    const o = r * this.inW;
    for (let x = 0; x < out.length; x++) out[x] = w0[x]! * src[o + i0[x]!]! + w1[x]! * src[o + i1[x]!]!;
  }

  /** Output row y, columns [x0, x1), into dst[o + x0, o + x1). */
  row(y: number, dst: Float32Array, o = 0, x0 = 0, x1 = this.a.length): void {
    const r0 = this.rows.i0[y]!;
    const r1 = this.rows.i1[y]!;
    if (r0 !== this.rowA) {
      if (r0 === this.rowB) {
        [this.a, this.b] = [this.b, this.a];
        this.rowA = r0;
        this.rowB = -1;
      } else {
        this.horizontal(r0, this.a);
        this.rowA = r0;
      }
    }
    if (r1 !== this.rowB) {
      if (r1 === this.rowA) this.b.set(this.a);
      else this.horizontal(r1, this.b);
      this.rowB = r1;
    }
    const h0 = this.rows.w0[y]!;
    const h1 = this.rows.w1[y]!;
    const a = this.a;
    const b = this.b;
    for (let x = x0; x < x1; x++) dst[o + x] = h0 * a[x]! + h1 * b[x]!;
  }
}

/**
 * Resizes an inH×inW float plane (row-major) with row taps × column taps, computing output rows [y0, y1) only
 * and writing output row y at dst[(y - y0)·outW] (see RowResampler).
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
  const r = new RowResampler(src, inW, rows, cols);
  for (let y = y0; y < y1; y++) r.row(y, dst, (y - y0) * outW);
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
  private readonly colFrom: Int32Array;
  private readonly colTo: Int32Array;

  constructor(readonly geom: Geometry, readonly maskSize: number) {
    const { imageSize: s, valid, original } = geom;
    this.padRows = axisTaps(maskSize, s, valid.height);
    this.padCols = axisTaps(maskSize, s, valid.width);
    this.origRows = axisTaps(valid.height, original.height);
    this.origCols = axisTaps(valid.width, original.width);
    this.cropped = new Float32Array(valid.height * valid.width);
    this.pixels = original.height * original.width;
    this.full = { r0: 0, r1: original.height, c0: 0, c1: original.width };
    // original column x reads mask columns [lo(x), hi(x)] (both non-decreasing in x); colFrom[k] is the first x
    // with hi(x) ≥ k, colTo[k] one past the last x with lo(x) ≤ k
    const m = maskSize;
    const w = original.width;
    this.colFrom = new Int32Array(m).fill(w);
    this.colTo = new Int32Array(m);
    for (let x = w - 1; x >= 0; x--) this.colFrom[this.padCols.i1[this.origCols.i1[x]!]!] = x;
    for (let k = m - 2; k >= 0; k--) this.colFrom[k] = Math.min(this.colFrom[k]!, this.colFrom[k + 1]!);
    for (let x = 0; x < w; x++) this.colTo[this.padCols.i0[this.origCols.i0[x]!]!] = x + 1;
    for (let k = 1; k < m; k++) this.colTo[k] = Math.max(this.colTo[k]!, this.colTo[k - 1]!);
  }

  /**
   * Query `q`'s logits at the original size inside `win`, row by row: the intermediate (cropped S×S) rows the
   * window reads are computed now, and row(y, out) of the returned resampler writes original row y, columns
   * [c0, c1), into out.
   */
  rows(masks: Float32Array, q: number, win: Window = this.full): RowResampler {
    const m = this.maskSize;
    const plane = masks.subarray(q * m * m, (q + 1) * m * m);
    const first = this.origRows.i0[win.r0]!;
    const last = this.origRows.i1[win.r1 - 1]!;
    const vw = this.geom.valid.width;
    resizePlane(plane, m, this.padRows, this.padCols, this.cropped.subarray(first * vw), first, last + 1);
    const c = this.origCols;
    const cols = win.c0 === 0 && win.c1 === c.i0.length ? c
      : { i0: c.i0.subarray(win.c0, win.c1), i1: c.i1.subarray(win.c0, win.c1), w0: c.w0.subarray(win.c0, win.c1), w1: c.w1.subarray(win.c0, win.c1) };
    return new RowResampler(this.cropped, vw, this.origRows, cols);
  }

  /**
   * Logits of query `q` of the [Q,M,M] `masks` at the original size inside `win`, written row by row
   * (width c1 - c0) into `out`.
   */
  logits(masks: Float32Array, q: number, out: Float32Array, win: Window = this.full): Float32Array {
    const rows = this.rows(masks, q, win);
    const ww = win.c1 - win.c0;
    for (let y = win.r0; y < win.r1; y++) rows.row(y, out, (y - win.r0) * ww);
    return out;
  }

  /**
   * The first and last column of each of query q's M rows with a logit above `threshold` (m and -1 for a row
   * with none). A small margin keeps float rounding on the safe side.
   */
  private activeColumns(masks: Float32Array, q: number, threshold: number): [Int32Array, Int32Array] {
    const m = this.maskSize;
    const base = q * m * m;
    const t = threshold - 1e-6 * Math.max(1, Math.abs(threshold));
    const first = new Int32Array(m).fill(m);
    const last = new Int32Array(m).fill(-1);
    for (let y = 0; y < m; y++) {
      const row = base + y * m;
      for (let x = 0; x < m; x++) {
        if (masks[row + x]! > t) {
          if (first[y] === m) first[y] = x;
          last[y] = x;
        }
      }
    }
    return [first, last];
  }

  /**
   * The window outside which query `q`'s logits cannot exceed `threshold` (a bilinear output never exceeds its
   * largest tap), or null when they exceed it nowhere.
   */
  support(masks: Float32Array, q: number, threshold: number): Window | null {
    const m = this.maskSize;
    const [first, last] = this.activeColumns(masks, q, threshold);
    let y0 = m, y1 = -1, x0 = m, x1 = -1;
    for (let y = 0; y < m; y++) {
      if (last[y]! < 0) continue;
      if (y < y0) y0 = y;
      y1 = y;
      x0 = Math.min(x0, first[y]!);
      x1 = Math.max(x1, last[y]!);
    }
    if (y1 < 0) return null;
    const padR = outputsReading(this.padRows, y0, y1);
    const padC = outputsReading(this.padCols, x0, x1);
    if (!padR || !padC) return null;
    const r = outputsReading(this.origRows, padR[0], padR[1]);
    const c = outputsReading(this.origCols, padC[0], padC[1]);
    return r && c ? { r0: r[0], r1: r[1] + 1, c0: c[0], c1: c[1] + 1 } : null;
  }

  /**
   * Within `win`, for each row r0 + i the columns [spans[2i], spans[2i + 1]) (relative to c0) outside which query
   * q's logits cannot exceed `threshold`: those that read a mask cell above it through both resizes. Empty
   * when equal. Tighter than the window where the mask is not a convex blob.
   */
  rowSpans(masks: Float32Array, q: number, threshold: number, win: Window): Int32Array {
    const m = this.maskSize;
    const [first, last] = this.activeColumns(masks, q, threshold);
    const spans = new Int32Array(2 * (win.r1 - win.r0));
    for (let y = win.r0; y < win.r1; y++) {
      let a = m, b = -1;
      const mr1 = this.padRows.i1[this.origRows.i1[y]!]!;
      for (let r = this.padRows.i0[this.origRows.i0[y]!]!; r <= mr1; r++) {
        a = Math.min(a, first[r]!);
        b = Math.max(b, last[r]!);
      }
      if (b < 0) continue;
      const x0 = Math.max(win.c0, this.colFrom[a]!);
      const x1 = Math.min(win.c1, this.colTo[b]!);
      if (x0 < x1) {
        spans[2 * (y - win.r0)] = x0 - win.c0;
        spans[2 * (y - win.r0) + 1] = x1 - win.c0;
      }
    }
    return spans;
  }
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

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

/**
 * Mask logits of one query (M×M) → logits at the original size, via the padded frame and the valid crop.
 * Taps are computed once per image; the scratch buffer is reused for every query. Row bands [r0, r1) of the
 * output can be computed alone (only the intermediate rows they read are computed), to bound memory.
 */
export class MaskResizer {
  private readonly padRows: AxisTaps;
  private readonly padCols: AxisTaps;
  private readonly origRows: AxisTaps;
  private readonly origCols: AxisTaps;
  private readonly cropped: Float32Array;
  readonly pixels: number;

  constructor(readonly geom: Geometry, readonly maskSize: number) {
    const { imageSize: s, valid, original } = geom;
    this.padRows = axisTaps(maskSize, s, valid.height);
    this.padCols = axisTaps(maskSize, s, valid.width);
    this.origRows = axisTaps(valid.height, original.height);
    this.origCols = axisTaps(valid.width, original.width);
    this.cropped = new Float32Array(valid.height * valid.width);
    this.pixels = original.height * original.width;
  }

  /** Logits of query `q` of the [Q,M,M] `masks` at the original size, rows [r0, r1), written into `out`. */
  logits(masks: Float32Array, q: number, out: Float32Array, r0 = 0, r1 = this.geom.original.height): Float32Array {
    const m = this.maskSize;
    const plane = masks.subarray(q * m * m, (q + 1) * m * m);
    const first = this.origRows.i0[r0]!;
    const last = this.origRows.i1[r1 - 1]!;
    resizePlane(plane, m, this.padRows, this.padCols, this.cropped.subarray(first * this.geom.valid.width), first, last + 1);
    return resizePlane(this.cropped, this.geom.valid.width, this.origRows, this.origCols, out, r0, r1);
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

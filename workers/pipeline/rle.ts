// COCO run-length encoding, byte-identical to pycocotools (maskApi.c rleEncode + rleToString).
// Runs are taken in column-major order (index = x·h + y), alternating and starting with zeros; each count is
// written in 5-bit groups (continuation bit 0x20, +48), from the 4th count on as the difference to the count two
// places earlier. Counts and characters go to reused module-level buffers: no per-pixel or per-run allocation.
import type { Rle } from '../../contracts/result.js';

/** A binary mask in row-major order (index = y·width + x), bytes 0 or 1 (other values are not allowed). */
export interface BinaryMask {
  data: Uint8Array;
  height: number;
  width: number;
}

let counts = new Uint32Array(1 << 12);
let chars = new Uint8Array(1 << 14);
let sortedIndex = new Uint32Array(1 << 12);
let perColumn = new Uint32Array(1 << 10);
let padded = new Uint8Array(0);

function grow<T extends Uint8Array | Uint32Array>(buf: T, need: number): T {
  let n = buf.length;
  while (n < need) n *= 2;
  const grown = new (buf.constructor as new (n: number) => T)(n);
  grown.set(buf);
  return grown;
}

/**
 * The pixels (x, y) of an h×w mask where the value differs from the previous pixel in column-major order (the
 * one above; at the top of a column, the bottom of the previous column; before the first pixel, 0). They must be
 * pushed row by row (y ascending, then x ascending): the mask's RLE follows from them alone, so a mask can be
 * encoded while it is produced row by row, without ever being stored.
 */
export class Transitions {
  private xs = new Uint32Array(256);
  private ys = new Uint32Array(256);
  private n = 0;

  constructor(public height: number, public width: number) {}

  push(x: number, y: number): void {
    if (this.n === this.xs.length) {
      this.xs = grow(this.xs, this.n + 1);
      this.ys = grow(this.ys, this.n + 1);
    }
    this.xs[this.n] = x;
    this.ys[this.n++] = y;
  }

  /** Empties it for a new h×w mask (its buffers are kept). */
  reset(height: number, width: number): void {
    this.height = height;
    this.width = width;
    this.n = 0;
  }

  /** The COCO RLE (pycocotools byte-identical). */
  toRle(): Rle {
    const { height: h, width: w, n: k, xs, ys } = this;
    // counting sort by column (stable, so rows stay ascending within a column) into column-major indices
    if (perColumn.length < w + 1) perColumn = new Uint32Array(w + 1);
    perColumn.fill(0, 0, w + 1);
    for (let t = 0; t < k; t++) perColumn[xs[t]! + 1]!++;
    for (let x = 0; x < w; x++) perColumn[x + 1]! += perColumn[x]!;
    if (sortedIndex.length < k) sortedIndex = grow(sortedIndex, k);
    for (let t = 0; t < k; t++) sortedIndex[perColumn[xs[t]!]!++] = xs[t]! * h + ys[t]!;
    if (counts.length < k + 1) counts = grow(counts, k + 1);
    let prev = 0;
    for (let t = 0; t < k; t++) {
      counts[t] = sortedIndex[t]! - prev;
      prev = sortedIndex[t]!;
    }
    counts[k] = h * w - prev;
    return { size: [h, w], counts: countsString(k + 1) };
  }
}

/** The first m run lengths in `counts` as the COCO string (rleToString). */
function countsString(m: number): string {
  if (chars.length < m * 7) chars = grow(chars, m * 7); // ≤ 7 five-bit groups per 32-bit count
  let p = 0;
  for (let i = 0; i < m; i++) {
    let x = i > 2 ? counts[i]! - counts[i - 2]! : counts[i]!;
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars[p++] = c + 48;
    }
  }
  return Buffer.from(chars.buffer, chars.byteOffset, p).toString('latin1');
}

const scan = new Transitions(0, 0);

/**
 * Transitions of a row-major mask. Strided column reads are slow, so they are found row by row (a pixel differs
 * from the one above it), comparing rows 4 pixels per Int32 word (pushRowChanges). Rows are read in place when
 * their length is a multiple of 4 bytes and the buffer is 4-aligned, otherwise from a zero-padded copy (padding
 * never differs).
 */
function rowTransitions(data: Uint8Array, h: number, w: number, out: Transitions): void {
  for (let x = 0; x < w; x++) {
    const above = x === 0 ? 0 : data[(h - 1) * w + x - 1];
    if (data[x] !== above) out.push(x, 0);
  }
  let bytes = data;
  let stride = w;
  if (w % 4 !== 0 || data.byteOffset % 4 !== 0) {
    stride = (w + 3) & ~3;
    if (padded.length < h * stride) padded = new Uint8Array(h * stride);
    else padded.fill(0, 0, h * stride);
    for (let y = 0; y < h; y++) padded.set(data.subarray(y * w, (y + 1) * w), y * stride);
    bytes = padded;
  }
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, (h * stride) >>> 2);
  const perRow = stride >>> 2;
  for (let y = 1; y < h; y++) pushRowChanges(words, y * perRow, (y - 1) * perRow, perRow, 0, y, out);
}

/**
 * Pushes (x0 + x, y) for every byte x where the two rows of `perRow` 32-bit words at word offsets a and b of
 * `words` differ. Compares 8 words (32 bytes) per branch; the bytes of a differing word come from the xor of the
 * two, lowest first (little-endian: byte n is bits 8n..8n+7). Not as doubles: where native code has turned on
 * denormals-are-zero for the thread, many different 0/1 byte patterns compare equal as doubles.
 */
export function pushRowChanges(words: Int32Array, a: number, b: number, perRow: number, x0: number, y: number, out: Transitions): void {
  const blocks = perRow & ~7;
  for (let j = 0; j < perRow; j += 8) {
    if (j < blocks && words[a + j] === words[b + j] && words[a + j + 1] === words[b + j + 1] &&
      words[a + j + 2] === words[b + j + 2] && words[a + j + 3] === words[b + j + 3] &&
      words[a + j + 4] === words[b + j + 4] && words[a + j + 5] === words[b + j + 5] &&
      words[a + j + 6] === words[b + j + 6] && words[a + j + 7] === words[b + j + 7]) continue;
    const j1 = Math.min(perRow, j + 8);
    for (let i = j; i < j1; i++) {
      let d = words[a + i]! ^ words[b + i]!;
      while (d !== 0) {
        const byte = (31 - Math.clz32(d & -d)) >>> 3;
        out.push(x0 + i * 4 + byte, y);
        d &= ~(0xff << (byte << 3));
      }
    }
  }
}

export function encodeRle(mask: BinaryMask): Rle {
  const { data, height: h, width: w } = mask;
  if (data.length !== h * w) throw new Error(`mask data has ${data.length} bytes, expected ${h}×${w}=${h * w}`);
  scan.reset(h, w);
  rowTransitions(data, h, w, scan);
  return scan.toRle();
}

/** Inverse of encodeRle (used by the overlay renderer and by tests). Returns a row-major 0/1 mask. */
export function decodeRle(rle: Rle): BinaryMask {
  const [h, w] = rle.size;
  const s = rle.counts;
  const data = new Uint8Array(h * w);
  const runs: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (runs.length > 2) x += runs[runs.length - 2]!;
    runs.push(x);
  }
  let pos = 0;
  for (let j = 0; j < runs.length; j++) {
    const n = runs[j]!;
    if (j % 2 === 1) {
      for (let q = pos; q < pos + n; q++) data[(q % h) * w + Math.floor(q / h)] = 1;
    }
    pos += n;
  }
  if (pos !== h * w) throw new Error(`RLE counts sum to ${pos}, expected ${h}×${w}=${h * w}`);
  return { data, height: h, width: w };
}

/** Number of foreground pixels. */
export function maskArea(mask: BinaryMask): number {
  let n = 0;
  const d = mask.data;
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) n++;
  return n;
}

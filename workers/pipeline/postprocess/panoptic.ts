// Word tasks, panoptic mode (Mask2Former-style inference over all Q queries, thing and stuff queries).
import type { Detection } from '../../../contracts/result.js';
import type { WordsTask } from '../../../contracts/task.js';
import { logitBand, sigmoid, softmaxRows } from '../numerics.js';
import { detection } from './common.js';
import { maskBox, MaskResizer } from './geometry.js';
import type { PostprocessConstants, RawOutputs } from './types.js';

interface Segment {
  label: number;
  mask: Uint8Array;
  score: number;
  stuff: boolean;
}

export function panoptic(raw: RawOutputs, task: WordsTask, resizer: MaskResizer, c: PostprocessConstants): Detection[] {
  const cols = raw.numPhrases;
  const background = cols - 1;
  const probs = softmaxRows(raw.logits, raw.numQueries, cols);
  const keep: number[] = [];
  const scores: number[] = [];
  const labels: number[] = [];
  for (let q = 0; q < raw.numQueries; q++) {
    let best = 0;
    for (let p = 1; p < cols; p++) if (probs[q * cols + p]! > probs[q * cols + best]!) best = p;
    const score = probs[q * cols + best]!;
    if (best !== background && score > c.panoptic_score_threshold) {
      keep.push(q);
      scores.push(score);
      labels.push(best);
    }
  }
  if (keep.length === 0) return [];

  // Pass 1: which kept query owns each pixel (first argmax of score · sigmoid(mask)).
  const { height: h, width: w } = resizer.geom.original;
  const n = resizer.pixels;
  const line = new Float32Array(w);
  const ownerValue = new Float32Array(n).fill(-1);
  const owner = new Int32Array(n);
  keep.forEach((q, j) => {
    const rows = resizer.rows(raw.masks, q);
    const s = scores[j]!;
    for (let y = 0; y < h; y++) {
      rows.row(y, line);
      const o = y * w;
      for (let x = 0; x < w; x++) {
        // s · sigmoid ≤ s (in float32 too): a pixel held at a value ≥ s cannot change owner
        if (ownerValue[o + x]! >= s) continue;
        const v = Math.fround(s * sigmoid(line[x]!));
        if (v > ownerValue[o + x]!) {
          ownerValue[o + x] = v;
          owner[o + x] = j;
        }
      }
    }
  });
  const visibleArea = new Int32Array(keep.length);
  for (let i = 0; i < n; i++) visibleArea[owner[i]!]!++;

  // Pass 2: a query's segment is the pixels it owns inside its own mask, kept if it is mostly visible. A query
  // that owns no pixel is dropped whatever its mask; sigmoid(logit) ≥ threshold is decided on the logit outside
  // a narrow band around the threshold's logit.
  const [below, above] = logitBand(c.panoptic_mask_threshold);
  const pt = c.panoptic_mask_threshold;
  const segments: Segment[] = [];
  const stuffSegment = new Map<number, Segment>();
  keep.forEach((q, j) => {
    if (visibleArea[j] === 0) return;
    // logits under `below` are outside the mask: only the rows' spans that can reach it are computed
    const win = Number.isFinite(below) ? resizer.support(raw.masks, q, below) : resizer.full;
    if (!win) return;
    const spans = Number.isFinite(below) ? resizer.rowSpans(raw.masks, q, below, win) : null;
    const rows = resizer.rows(raw.masks, q, win);
    const mask = new Uint8Array(n);
    let ownArea = 0;
    let area = 0;
    for (let y = win.r0; y < win.r1; y++) {
      const i = 2 * (y - win.r0);
      const x0 = spans ? spans[i]! : 0;
      const x1 = spans ? spans[i + 1]! : w;
      if (x0 === x1) continue;
      rows.row(y, line, 0, x0, x1);
      const o = y * w + win.c0;
      for (let x = x0; x < x1; x++) {
        const v = line[x]!;
        if (v < below || (v <= above && sigmoid(v) < pt)) continue;
        ownArea++;
        if (owner[o + x] === j) {
          mask[o + x] = 1;
          area++;
        }
      }
    }
    if (ownArea === 0 || area === 0) return;
    if (visibleArea[j]! / ownArea < c.panoptic_overlap_threshold) return;
    const label = labels[j]!;
    const stuff = task.phrases[label]!.stuff;
    const merged = stuff ? stuffSegment.get(label) : undefined;
    if (merged) {
      for (let i = 0; i < n; i++) merged.mask[i]! |= mask[i]!;
      merged.score = Math.max(merged.score, scores[j]!);
      return;
    }
    const seg = { label, mask, score: scores[j]!, stuff };
    segments.push(seg);
    if (stuff) stuffSegment.set(label, seg);
  });

  const { original } = resizer.geom;
  return segments.map((s) => {
    let area = 0;
    for (let i = 0; i < n; i++) area += s.mask[i]!;
    return detection(s.label, task.phrases[s.label]!.text, s.score, task.outputs, {
      box: maskBox(s.mask, original),
      mask: { data: s.mask, height: original.height, width: original.width },
      area,
      stuff: s.stuff,
    });
  });
}

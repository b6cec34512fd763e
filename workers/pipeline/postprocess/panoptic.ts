// Word tasks, panoptic mode (Mask2Former-style inference over all Q queries, thing and stuff queries).
import type { Detection } from '../../../contracts/result.js';
import type { WordsTask } from '../../../contracts/task.js';
import { detection, softmaxRows } from './common.js';
import { maskBox, MaskResizer, sigmoid } from './geometry.js';
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
  const n = resizer.pixels;
  const logits = new Float32Array(n);
  const ownerValue = new Float32Array(n).fill(-1);
  const owner = new Int32Array(n);
  keep.forEach((q, j) => {
    resizer.logits(raw.masks, q, logits);
    const s = scores[j]!;
    for (let i = 0; i < n; i++) {
      const v = Math.fround(s * sigmoid(logits[i]!));
      if (v > ownerValue[i]!) {
        ownerValue[i] = v;
        owner[i] = j;
      }
    }
  });

  // Pass 2: a query's segment is the pixels it owns inside its own mask, kept if it is mostly visible.
  const segments: Segment[] = [];
  const stuffSegment = new Map<number, Segment>();
  keep.forEach((q, j) => {
    resizer.logits(raw.masks, q, logits);
    const mask = new Uint8Array(n);
    let ownArea = 0;
    let visibleArea = 0;
    let area = 0;
    for (let i = 0; i < n; i++) {
      const own = sigmoid(logits[i]!) >= c.panoptic_mask_threshold;
      const visible = owner[i] === j;
      if (own) ownArea++;
      if (visible) visibleArea++;
      if (own && visible) {
        mask[i] = 1;
        area++;
      }
    }
    if (visibleArea === 0 || ownArea === 0 || area === 0) return;
    if (visibleArea / ownArea < c.panoptic_overlap_threshold) return;
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

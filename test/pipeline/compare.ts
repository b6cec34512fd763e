// Tolerant comparison of PerceptionResult task results with the reference's: same detections (phrase, score within
// 1e-3 relative, boxes within 1e-3 relative, mask IoU ≥ 0.999, or the tolerances given), matched one-to-one so
// near-tied scores may swap.
import type { Detection, Rle, TaskResult } from '../../contracts/result.js';
import { decodeRle } from '../../workers/pipeline/rle.js';

export const REL = 1e-3;
export const MIN_IOU = 0.999;
export interface Tolerance {
  rel: number;
  minIoU: number;
}
const EXACT: Tolerance = { rel: REL, minIoU: MIN_IOU };

export function close(a: number, b: number, rel = REL): boolean {
  return Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
}

export function maskIoU(a: Rle, b: Rle): number {
  const ma = decodeRle(a).data;
  const mb = decodeRle(b).data;
  if (ma.length !== mb.length) return 0;
  let inter = 0;
  let union = 0;
  for (let i = 0; i < ma.length; i++) {
    inter += ma[i]! & mb[i]!;
    union += ma[i]! | mb[i]!;
  }
  return union === 0 ? 1 : inter / union;
}

function sameDetection(a: Detection, b: Detection, tol: Tolerance): string | null {
  if (a.phrase_index !== b.phrase_index || a.phrase !== b.phrase) return `phrase ${a.phrase_index} vs ${b.phrase_index}`;
  if (!close(a.score, b.score, tol.rel)) return `score ${a.score} vs ${b.score}`;
  if (!!a.box !== !!b.box) return 'box presence';
  if (a.box && b.box && !a.box.every((v, i) => close(v, b.box![i]!, tol.rel))) return `box ${a.box} vs ${b.box}`;
  if (!!a.mask !== !!b.mask) return 'mask presence';
  if (a.mask && b.mask) {
    const iou = maskIoU(a.mask, b.mask);
    if (iou < tol.minIoU) return `mask IoU ${iou}`;
  }
  if (a.stuff !== b.stuff) return 'stuff flag';
  if (Math.abs(a.area - b.area) > Math.max(2, b.area * (1 - tol.minIoU))) return `area ${a.area} vs ${b.area}`;
  return null;
}

/** Differences between our task result and the reference's; empty when they agree. */
export function compareTask(ours: TaskResult, ref: TaskResult, tol: Tolerance = EXACT): string[] {
  const problems: string[] = [];
  if (ours.mode !== ref.mode || ours.type !== ref.type) problems.push(`mode ${ours.type}/${ours.mode} vs ${ref.type}/${ref.mode}`);
  if ((ours.no_target ?? null) !== (ref.no_target ?? null)) problems.push(`no_target ${ours.no_target} vs ${ref.no_target}`);
  if (ours.detections.length !== ref.detections.length) {
    problems.push(`${ours.detections.length} detections vs ${ref.detections.length}`);
    return problems;
  }
  const used = new Set<number>();
  ref.detections.forEach((r, i) => {
    // the same position first, then any unused detection (near-equal scores may be ordered differently)
    const order = [i, ...ours.detections.keys()].filter((j) => !used.has(j));
    const j = order.find((k) => sameDetection(ours.detections[k]!, r, tol) === null);
    if (j === undefined) problems.push(`detection ${i}: ${sameDetection(ours.detections[i]!, r, tol)}`);
    else used.add(j);
  });
  const sem = ours.semantic ?? [];
  const refSem = ref.semantic ?? [];
  if (sem.length !== refSem.length) problems.push(`${sem.length} semantic regions vs ${refSem.length}`);
  refSem.forEach((r, i) => {
    const o = sem[i];
    if (!o || o.phrase_index !== r.phrase_index) problems.push(`semantic ${i}: phrase ${o?.phrase_index} vs ${r.phrase_index}`);
    else if (maskIoU(o.mask, r.mask) < tol.minIoU) problems.push(`semantic ${i}: IoU ${maskIoU(o.mask, r.mask)}`);
  });
  return problems;
}

/** Largest |a-b| / max(1,|b|) over two flat arrays. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

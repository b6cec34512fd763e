// One TaskResult (contracts/result.ts) from the raw perception-decoder outputs of one task on one image.
// Mirrors model/mvp_lm/postprocess.py (the oracle the parity tests compare against).
import type { TaskResult } from '../../../contracts/result.js';
import type { Task } from '../../../contracts/task.js';
import { MaskResizer, type Geometry } from './geometry.js';
import { panoptic } from './panoptic.js';
import { semantic } from './semantic.js';
import { sentenceMulti, sentenceSingle } from './sentence.js';
import type { PostprocessConstants, PostprocessInput, RawOutputs } from './types.js';
import { wordsTopK } from './words.js';

export function postprocessTask(
  task: Task,
  taskIndex: number,
  raw: RawOutputs,
  geom: Geometry,
  constants: PostprocessConstants,
  numK: number,
): TaskResult {
  const resizer = new MaskResizer(geom, raw.maskSize);
  if (task.type === 'words') {
    if (raw.numPhrases !== task.phrases.length + 1) {
      throw new Error(`task ${taskIndex}: pred_logits has ${raw.numPhrases} phrase columns, expected ${task.phrases.length} phrases + background`);
    }
    const base = { task_index: taskIndex, type: task.type, mode: task.mode };
    switch (task.mode) {
      case 'panoptic':
        return { ...base, detections: panoptic(raw, task, resizer, constants) };
      case 'semantic':
        return { ...base, detections: [], semantic: semantic(raw, task, resizer) };
      case 'instance':
      case 'detection':
        return { ...base, detections: wordsTopK(raw, task, resizer, constants, numK) };
    }
  }
  const base = { task_index: taskIndex, type: task.type, mode: task.mode };
  if (task.mode === 'single') return { ...base, detections: sentenceSingle(raw, task, resizer, constants, numK) };
  const { detections, noTarget } = sentenceMulti(raw, task, resizer, constants, numK);
  return { ...base, detections, no_target: noTarget };
}

/** postprocessTask on what a post-processing thread is sent. */
export function postprocessFrom(task: Task, taskIndex: number, p: PostprocessInput): TaskResult {
  return postprocessTask(task, taskIndex, p.raw, p.geometry, p.constants, p.numQueries);
}

// Post-processing parity on synthetic decoder outputs that exercise what a random tiny model rarely produces:
// many panoptic segments with overlaps and merged stuff, several semantic regions, "no target" answers,
// multi-target unions, ties. Expected values come from model/mvp_lm/postprocess.py run on the same arrays.
import { describe, expect, it } from 'vitest';
import { Task } from '../../contracts/task.js';
import { geometryFor, MaskResizer } from '../../workers/pipeline/postprocess/geometry.js';
import { postprocessTask } from '../../workers/pipeline/postprocess/index.js';
import { PostprocessPool } from '../../workers/pipeline/postprocess-pool.js';
import type { PostprocessConstants, RawOutputs } from '../../workers/pipeline/postprocess/types.js';
import type { TaskResult } from '../../contracts/result.js';
import { compareTask } from './compare.js';
import { runPython } from './python.js';

const BASE: PostprocessConstants = {
  mask_logit_threshold: 0,
  panoptic_score_threshold: 0.1,
  panoptic_overlap_threshold: 0.8,
  panoptic_mask_threshold: 0.5,
  instance_top_k: 100,
  generalised_sentence_threshold: 0.6,
  no_target_threshold: 0.5,
};

function syntheticRaw(seed: number, numQueries: number, numPhrases: number, maskSize: number, sentence: boolean, scoreScale = 4): RawOutputs {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const logits = new Float32Array(numQueries * numPhrases).map(() => normal() * scoreScale + (sentence ? -1 : 0));
  const masks = new Float32Array(numQueries * maskSize * maskSize);
  const boxes = new Float32Array(numQueries * 4);
  for (let q = 0; q < numQueries; q++) {
    const cx = rand() * maskSize, cy = rand() * maskSize, r = (0.1 + rand() * 0.4) * maskSize;
    for (let y = 0; y < maskSize; y++) {
      for (let x = 0; x < maskSize; x++) {
        masks[q * maskSize * maskSize + y * maskSize + x] = 6 * (1 - Math.hypot(x - cx, y - cy) / r) + normal() * 0.5;
      }
    }
    boxes.set([rand(), rand(), rand() * 0.5, rand() * 0.5], q * 4);
  }
  return { logits, masks, boxes, numQueries, numPhrases, maskSize };
}

interface Case {
  task: unknown;
  raw: RawOutputs;
  original: [number, number];
  imageSize: number;
  constants: PostprocessConstants;
  numK: number;
}

const phrases = ['red square', 'blue circle', { text: 'sky', stuff: true }, { text: 'grass', stuff: true }, 'dog'];
const words = (mode: string, extra: object = {}) => ({ type: 'words', mode, phrases, score_threshold: 0.05, top_k: 20, ...extra });
const CASES: Case[] = [];
const geoms: [[number, number], number][] = [[[50, 80], 64], [[37, 23], 64], [[64, 64], 64], [[130, 90], 64]];
geoms.forEach(([original, imageSize], g) => {
  const wordsRaw = (seed: number) => syntheticRaw(seed, 14, phrases.length + 1, 16, false);
  const sentRaw = (seed: number, scale = 4) => syntheticRaw(seed, 14, 1, 16, true, scale);
  const add = (task: unknown, raw: RawOutputs, constants: Partial<PostprocessConstants> = {}) =>
    CASES.push({ task, raw, original, imageSize, constants: { ...BASE, ...constants }, numK: 10 });
  add(words('panoptic'), wordsRaw(g * 10 + 1));
  add(words('panoptic'), wordsRaw(g * 10 + 2), { panoptic_overlap_threshold: 0.3, panoptic_score_threshold: 0.05 });
  add(words('instance'), wordsRaw(g * 10 + 3));
  add(words('instance', { score_threshold: 0.5 }), wordsRaw(g * 10 + 3)); // most pairs pruned before their masks
  add(words('detection', { outputs: ['boxes'] }), wordsRaw(g * 10 + 4));
  add(words('detection'), wordsRaw(g * 10 + 4), { mask_logit_threshold: 1.5 });
  add(words('semantic'), wordsRaw(g * 10 + 5));
  add({ type: 'sentence', sentence: 'it', mode: 'single' }, sentRaw(g * 10 + 6));
  add({ type: 'sentence', sentence: 'them', mode: 'multi' }, sentRaw(g * 10 + 7), { generalised_sentence_threshold: 0.3 });
  add({ type: 'sentence', sentence: 'nothing', mode: 'multi' }, sentRaw(g * 10 + 8, 0.5), { no_target_threshold: 0.9 });
  add({ type: 'sentence', sentence: 'them', mode: 'multi', score_threshold: 0.99 }, sentRaw(g * 10 + 9), { no_target_threshold: 0.1 });
});

function reference(cases: Case[]): TaskResult[] {
  const payload = JSON.stringify(cases.map((c) => ({
    task: c.task,
    raw: { pred_logits: Array.from(c.raw.logits), pred_masks: Array.from(c.raw.masks), pred_boxes: Array.from(c.raw.boxes) },
    shape: [c.raw.numQueries, c.raw.numPhrases, c.raw.maskSize],
    original: c.original,
    image_size: c.imageSize,
    constants: c.constants,
    num_k: c.numK,
  })));
  const out = runPython(`import sys, json, numpy as np
from mvp_lm.postprocess import geometry_for, postprocess_task
res = []
for c in json.load(sys.stdin):
    q, p, m = c['shape']
    raw = {'pred_logits': np.array(c['raw']['pred_logits'], np.float32).reshape(q, p),
           'pred_masks': np.array(c['raw']['pred_masks'], np.float32).reshape(q, m, m),
           'pred_boxes': np.array(c['raw']['pred_boxes'], np.float32).reshape(q, 4)}
    res.append(postprocess_task(c['task'], raw, geometry_for(tuple(c['original']), c['image_size']), c['constants'], c['num_k'], 0))
print(json.dumps(res))`, payload);
  return JSON.parse(out) as TaskResult[];
}

describe('post-processing threads (postprocess-pool.ts)', () => {
  it('give what post-processing on the calling thread gives, for calls in flight at once, and pass errors back', async () => {
    const pool = PostprocessPool.start(2);
    try {
      const input = (c: (typeof CASES)[number]) => ({
        raw: c.raw,
        geometry: geometryFor({ height: c.original[0], width: c.original[1] }, c.imageSize),
        constants: c.constants,
        numQueries: c.numK,
      });
      const results = await Promise.all(CASES.map((c) => pool.run(Task.parse(c.task), 0, input(c))));
      CASES.forEach((c, i) => expect(results[i]).toEqual(postprocessTask(Task.parse(c.task), 0, c.raw, input(c).geometry, c.constants, c.numK)));
      const words = CASES.find((c) => (c.task as { type: string }).type === 'words')!;
      const wrong = { ...words.raw, numPhrases: words.raw.numPhrases + 1 };
      await expect(pool.run(Task.parse(words.task), 3, { ...input(words), raw: wrong })).rejects.toThrow(/task 3: pred_logits has \d+ phrase columns/);
    } finally {
      await pool.close();
    }
  });
});

describe('post-processing parity on synthetic decoder outputs', () => {
  it('matches model/mvp_lm/postprocess.py in every mode', () => {
    const expected = reference(CASES);
    let detections = 0;
    let regions = 0;
    let noTarget = 0;
    CASES.forEach((c, i) => {
      const ours = postprocessTask(Task.parse(c.task), 0, c.raw, geometryFor({ height: c.original[0], width: c.original[1] }, c.imageSize), c.constants, c.numK);
      expect(compareTask(ours, expected[i]!), `case ${i}: ${JSON.stringify(c.task)} ${JSON.stringify(c.original)}`).toEqual([]);
      detections += expected[i]!.detections.length;
      regions += expected[i]!.semantic?.length ?? 0;
      if (expected[i]!.no_target) noTarget++;
    });
    // the synthetic outputs really exercise the interesting paths
    expect(detections).toBeGreaterThan(100);
    expect(regions).toBeGreaterThan(4);
    expect(noTarget).toBeGreaterThan(0);
    const panopticSegments = expected.filter((_, i) => (CASES[i]!.task as { mode: string }).mode === 'panoptic').map((r) => r.detections.length);
    expect(Math.max(...panopticSegments)).toBeGreaterThan(2);
  });
});

describe('mask support windows', () => {
  it('contain every pixel whose resized logit exceeds the threshold', () => {
    const sizes: [number, number][] = [[50, 80], [37, 23], [64, 64], [130, 90], [7, 300]];
    let checked = 0;
    const outside: string[] = [];
    sizes.forEach(([h, w], g) => {
      const raw = syntheticRaw(500 + g, 6, 1, 16, false);
      const resizer = new MaskResizer(geometryFor({ height: h, width: w }, 64), 16);
      const logits = new Float32Array(h * w);
      for (let q = 0; q < raw.numQueries; q++) {
        for (const threshold of [0, 1.5, -2]) {
          resizer.logits(raw.masks, q, logits);
          const win = resizer.support(raw.masks, q, threshold);
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              if (logits[y * w + x]! <= threshold) continue;
              checked++;
              if (!(win && y >= win.r0 && y < win.r1 && x >= win.c0 && x < win.c1)) outside.push(`${h}×${w} q ${q} (${y},${x}) thr ${threshold}`);
            }
          }
        }
      }
    });
    expect(outside).toEqual([]);
    expect(checked).toBeGreaterThan(1000);
  });
});

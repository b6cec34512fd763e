// The parity prompts: the cases of parity.test.ts (every task mode, caption on and off, a chunked vocabulary),
// shared with generation.test.ts, which decodes captions on the same images and prompts.
import type { ReferenceCase } from './bundles.js';

export const THINGS = ['red square', 'blue circle', 'dog', 'person', 'car', 'tree', 'cup', 'chair', 'bird', 'cat', 'boat',
  'kite', 'bench', 'bus', 'truck', 'horse', 'sheep', 'cow', 'clock', 'vase'];
const words = (mode: string, extra: object = {}) => ({
  type: 'words', mode, score_threshold: 0, top_k: 12,
  phrases: ['red square', 'blue circle', { text: 'sky', stuff: true }, { text: 'grass', stuff: true }], ...extra,
});

/** `size` [width, height] of the syntheticPng with seed 100 + the case's index. */
export const CASES: (Omit<ReferenceCase, 'image'> & { size: [number, number] })[] = [
  { id: 'landscape-words', size: [140, 90], caption: true, tasks: [words('instance'), words('panoptic'), words('semantic'), words('detection', { outputs: ['boxes'] })] },
  { id: 'portrait-sentences', size: [70, 150], caption: false, tasks: [
    { type: 'sentence', sentence: 'the red square on the left', mode: 'single' },
    { type: 'sentence', sentence: 'every blue circle', mode: 'multi' },
    { type: 'sentence', sentence: 'the small dog', mode: 'multi', score_threshold: 0.2, outputs: ['masks'] },
  ] },
  { id: 'square-chunked', size: [128, 128], caption: true, tasks: [
    { type: 'words', mode: 'instance', phrases: THINGS, score_threshold: 0, top_k: 30 },
    { type: 'words', mode: 'panoptic', phrases: THINGS.map((t, i) => ({ text: t, stuff: i % 3 === 0 })) },
  ] },
  { id: 'downscale-mixed', size: [300, 200], caption: true, tasks: [words('instance', { score_threshold: 0.3 }), { type: 'sentence', sentence: 'the tree', mode: 'single' }] },
  { id: 'upscale-tiny', size: [30, 20], caption: false, tasks: [words('instance'), words('semantic'), { type: 'sentence', sentence: 'a cup', mode: 'multi' }] },
];

export const caseSeed = (index: number) => 100 + index;

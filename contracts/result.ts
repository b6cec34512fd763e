// The versioned result document a worker writes to storage and the API serves.
import { z } from 'zod';

export const RESULT_SCHEMA_VERSION = '1';

/** COCO RLE exactly as pycocotools writes it: column-major, counts as its compressed ASCII string. */
export const Rle = z.strictObject({
  size: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
  counts: z.string(),
});
export type Rle = z.infer<typeof Rle>;

/** Absolute [x0, y0, x1, y1] in original-image pixels. */
export const Box = z.tuple([z.number(), z.number(), z.number(), z.number()]);

export const Detection = z.strictObject({
  phrase_index: z.number().int().nonnegative(),
  phrase: z.string(),
  score: z.number(),
  box: Box.optional(),
  mask: Rle.optional(),
  area: z.number().int().nonnegative(),
  stuff: z.boolean().optional(),
});
export type Detection = z.infer<typeof Detection>;

export const SemanticRegion = z.strictObject({
  phrase_index: z.number().int().nonnegative(),
  phrase: z.string(),
  mask: Rle,
  area: z.number().int().nonnegative(),
});

export const TaskResult = z.strictObject({
  task_index: z.number().int().nonnegative(),
  type: z.enum(['words', 'sentence']),
  mode: z.enum(['panoptic', 'instance', 'semantic', 'detection', 'single', 'multi']),
  detections: z.array(Detection),
  /** Semantic mode: one region per phrase present in the image. */
  semantic: z.array(SemanticRegion).optional(),
  /** Sentence multi mode: true when the model says nothing in the image matches. */
  no_target: z.boolean().optional(),
});
export type TaskResult = z.infer<typeof TaskResult>;

export const PerceptionResult = z.strictObject({
  schema_version: z.literal(RESULT_SCHEMA_VERSION),
  job_id: z.string(),
  model: z.strictObject({ name: z.string(), version: z.string(), variant: z.enum(['paper', 'released-code']) }),
  provider: z.enum(['cpu', 'cuda']),
  image: z.strictObject({ width: z.number().int().positive(), height: z.number().int().positive() }),
  caption: z.string().nullable(),
  tasks: z.array(TaskResult),
  timings_ms: z
    .record(z.string(), z.number().nonnegative())
    .describe(
      'Milliseconds per stage (preprocess, vision, language, perception, postprocess; a stage\'s time includes waiting for its batch), and for the batched stages the largest batch this job\'s work ran in (vision_batch, language_batch, perception_batch; 1 = alone).',
    ),
});
export type PerceptionResult = z.infer<typeof PerceptionResult>;

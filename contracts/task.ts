// One perception task on an image: the four groups of the paper (word/sentence x box/mask).
// Shared by the gateway (request validation) and the workers (job execution). Phrase and sentence text goes
// through text() (text.ts): NFC, trimmed, no control characters, not blank, limits counted after that.
import { z } from 'zod';
import { text } from './text.js';

export const LIMITS = {
  maxTasks: 8,
  maxPhrases: 1000,
  maxPhraseChars: 64,
  maxSentenceChars: 512,
  maxTopK: 300,
} as const;

export const Outputs = z
  .array(z.enum(['boxes', 'masks']))
  .min(1)
  .max(2)
  .refine((a) => new Set(a).size === a.length, 'outputs must not repeat')
  .default(['boxes', 'masks']);

const Phrase = z.strictObject({
  text: text(LIMITS.maxPhraseChars),
  /** Stuff phrases (sky, grass) are merged into one region per phrase in panoptic mode. */
  stuff: z.boolean().default(false),
});

export const WordsTask = z.strictObject({
  type: z.literal('words'),
  phrases: z
    .array(z.union([text(LIMITS.maxPhraseChars), Phrase]))
    .min(1)
    .max(LIMITS.maxPhrases)
    .transform((ps) => ps.map((p) => (typeof p === 'string' ? { text: p, stuff: false } : p)))
    .refine((ps) => new Set(ps.map((p) => p.text.toLowerCase())).size === ps.length, 'phrases must be unique'),
  mode: z.enum(['panoptic', 'instance', 'semantic', 'detection']).default('instance'),
  outputs: Outputs,
  score_threshold: z.number().min(0).max(1).default(0.3),
  top_k: z.number().int().min(1).max(LIMITS.maxTopK).default(100),
});

export const SentenceTask = z.strictObject({
  type: z.literal('sentence'),
  sentence: text(LIMITS.maxSentenceChars),
  /** single: exactly one target (RES/REC); multi: zero, one or several targets (gRefCOCO). */
  mode: z.enum(['single', 'multi']).default('single'),
  outputs: Outputs,
  score_threshold: z.number().min(0).max(1).optional(),
});

export const Task = z.discriminatedUnion('type', [WordsTask, SentenceTask]);
export type Task = z.output<typeof Task>;
export type WordsTask = z.output<typeof WordsTask>;
export type SentenceTask = z.output<typeof SentenceTask>;

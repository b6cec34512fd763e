// Test bundles and reference outputs, produced by the model package's own CLIs (never by the code under test).
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PYTHON } from './python.js';

export const BUNDLES = {
  paper: path.resolve('.data/bundles/tiny-paper'),
  'released-code': path.resolve('.data/bundles/tiny-released'),
  /** the paper bundle exported with --fp16 too (the same weights) */
  'paper-fp16': path.resolve('.data/bundles/tiny-paper-fp16'),
} as const;
const EXPORT_ARGS: Record<keyof typeof BUNDLES, string[]> = {
  paper: ['--variant', 'paper'],
  'released-code': ['--variant', 'released-code'],
  'paper-fp16': ['--variant', 'paper', '--fp16'],
};

function python(args: string[], timeoutMs = 900_000): void {
  execFileSync(PYTHON, args, { cwd: path.resolve('model'), stdio: ['ignore', 'inherit', 'inherit'], timeout: timeoutMs });
}

/**
 * Exports the tiny bundle of a variant with `python -m mvp_lm.export` unless it is already there; a cached bundle
 * exported before decoder_generate.onnx existed gets it with `--add-generation-graph` (what the export would write).
 */
export function ensureBundle(variant: keyof typeof BUNDLES): string {
  const dir = BUNDLES[variant];
  const manifest = path.join(dir, 'manifest.json');
  if (!existsSync(manifest)) {
    python(['-m', 'mvp_lm.export', '--preset', 'tiny', ...EXPORT_ARGS[variant], '--seed', '0', '--out', dir]);
  } else if (!(JSON.parse(readFileSync(manifest, 'utf8')) as { precisions: { fp32: { graphs: Record<string, string> } } }).precisions.fp32.graphs.decoder_generate) {
    python(['-m', 'mvp_lm.export', '--add-generation-graph', '--bundle', dir]);
  }
  return dir;
}

export interface ReferenceCase {
  id: string;
  image: string;
  tasks: unknown[];
  caption: boolean;
}

/** Runs `python -m mvp_lm.reference` on the cases (written next to their images) and returns its JSON. */
export function runReference(bundle: string, workDir: string, cases: ReferenceCase[], precision: 'fp32' | 'fp16' = 'fp32'): ReferenceDoc {
  mkdirSync(workDir, { recursive: true });
  const casesFile = path.join(workDir, 'cases.json');
  const outFile = path.join(workDir, 'reference.json');
  writeFileSync(casesFile, JSON.stringify(cases, null, 1));
  python(['-m', 'mvp_lm.reference', '--bundle', bundle, '--cases', casesFile, '--out', outFile, '--precision', precision]);
  return JSON.parse(readFileSync(outFile, 'utf8')) as ReferenceDoc;
}

export interface ArraySummary {
  shape: number[];
  values?: unknown;
}

export interface ReferenceDoc {
  cases: {
    id: string;
    result: import('../../contracts/result.js').PerceptionResult;
    trace: {
      geometry: { valid_hw: [number, number]; orig_hw: [number, number] };
      tasks: {
        prompts: { input_ids: number[]; image_index: number; phrase_spans: [number, number][] }[];
        generated_ids: number[] | null;
        fed_tail_ids: number[] | null;
        caption: string | null;
        raw: Record<'pred_logits' | 'pred_masks' | 'pred_boxes', ArraySummary>;
      }[];
    };
  }[];
}

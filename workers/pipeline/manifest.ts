// The parts of a bundle's manifest.json the worker reads (model/BUNDLE.md). The JSON Schema in
// model/manifest.schema.json is the authority: bundle.ts validates against it before this type is trusted.
import type { PostprocessConstants } from './postprocess/types.js';

export const GRAPHS = ['vision_encoder', 'embed_tokens', 'decoder_model_merged', 'perception_decoder'] as const;
export type GraphName = (typeof GRAPHS)[number];

export type Variant = 'paper' | 'released-code';

export interface Templates {
  prefix: string;
  word_task: string;
  sentence_task: string;
  phrase_separator: string;
  background_phrase: string;
  suffix: string;
  response_marker: string;
  no_caption_response: string;
}

export interface Precision {
  dtype: 'float32' | 'float16';
  /** Graph file per graph, relative to the bundle directory. */
  graphs: Record<GraphName, string>;
}

export interface Manifest {
  schema_version: '1';
  name: string;
  version: string;
  variant: Variant;
  preset: 'tiny' | 'full';
  dims: {
    image_size: number;
    d_model: number;
    hidden_size: number;
    num_layers: number;
    num_heads: number;
    head_dim: number;
    vocab_size: number;
    num_image_tokens: number;
    mask_size: number;
    num_memory_tokens: number;
    level_shapes: [number, number][];
    num_queries: number;
    num_stuff_queries: number;
    num_total_queries: number;
  };
  tokens: { image: number; per: number; seg: number | null; eos: number; pad: number };
  tokenizer: { file: string; vocab_size: number };
  templates: Templates;
  preprocess: { image_size: number; pad_value: number; mean: number[]; std: number[] };
  postprocess: PostprocessConstants;
  generation: { max_new_tokens: number; vocab_chunk_size: number; strategy: 'greedy' };
  precisions: { fp32: Precision; fp16?: Precision };
  files: Record<string, { sha256: string; bytes: number }>;
}

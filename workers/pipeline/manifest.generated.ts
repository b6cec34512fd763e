// GENERATED FILE, DO NOT EDIT. Written by `npm run contracts` (scripts/contracts.ts) with
// json-schema-to-typescript from model/manifest.schema.json, the authority: change the schema, then regenerate.
// workers/pipeline/manifest.ts re-exports these types under the names the worker uses.

export type PositiveInt = number;
export type TokenId = number;
export type RelativePath = string;
/**
 * @minItems 3
 * @maxItems 3
 */
export type Rgb = [number, number, number];
export type Unit = number;
export type Sha256 = string;

/**
 * manifest.json of a model bundle (model/BUNDLE.md). Written by `python -m mvp_lm.export`; validated by the model package and by the TypeScript worker (ajv, draft 2020-12).
 */
export interface Manifest {
  schema_version: '1';
  name: string;
  version: string;
  variant: 'paper' | 'released-code';
  preset: 'tiny' | 'mid' | 'full';
  /**
   * MVPLMConfig.to_dict() of mvp_lm/config.py (the PyTorch side rebuilds the model from it).
   */
  config: {
    variant: 'paper' | 'released-code';
    image_size: PositiveInt;
    d_model: PositiveInt;
    phi: {
      [k: string]: unknown;
    };
    decoder: {
      [k: string]: unknown;
    };
    [k: string]: unknown;
  };
  dims: {
    image_size: PositiveInt;
    d_model: PositiveInt;
    hidden_size: PositiveInt;
    num_layers: PositiveInt;
    num_heads: PositiveInt;
    head_dim: PositiveInt;
    vocab_size: PositiveInt;
    num_image_tokens: PositiveInt;
    mask_size: PositiveInt;
    num_memory_tokens: PositiveInt;
    /**
     * @minItems 1
     */
    level_shapes: [[PositiveInt, PositiveInt], ...[PositiveInt, PositiveInt][]];
    num_queries: PositiveInt;
    num_stuff_queries: number;
    num_total_queries: PositiveInt;
  };
  tokens: {
    image: TokenId;
    per: TokenId;
    seg: TokenId | null;
    eos: TokenId;
    pad: TokenId;
  };
  tokenizer: {
    file: RelativePath;
    vocab_size: PositiveInt;
  };
  templates: {
    prefix: string;
    word_task: string;
    sentence_task: string;
    phrase_separator: string;
    background_phrase: string;
    suffix: string;
    response_marker: string;
    no_caption_response: string;
  };
  preprocess: {
    image_size: PositiveInt;
    resize: 'bilinear_half_pixel_no_antialias';
    rounding: 'round_half_up';
    pad_value: number;
    mean: Rgb;
    std: Rgb;
    channel_order: 'RGB';
    layout: 'NCHW';
  };
  postprocess: {
    mask_logit_threshold: number;
    panoptic_score_threshold: Unit;
    panoptic_overlap_threshold: Unit;
    panoptic_mask_threshold: Unit;
    instance_top_k: PositiveInt;
    generalised_sentence_threshold: Unit;
    no_target_threshold: Unit;
  };
  generation: {
    max_new_tokens: number;
    vocab_chunk_size: PositiveInt;
    strategy: 'greedy';
  };
  onnx: {
    opset: number;
    /**
     * @minItems 1
     * @maxItems 1
     */
    domains: [''];
  };
  precisions: {
    fp32: Precision;
    fp16?: Precision;
  };
  /**
   * Optional (bundles exported before it existed have none): the export ran every fp32 graph on max_batch random items at once and on each alone and found the same outputs (language graphs on prompts of different lengths, right-padded with attention mask 0), so a worker may batch up to max_batch items per run (BUNDLE.md, Batching).
   */
  batching?: {
    /**
     * the largest batch the export tested (1: not tested beyond one item)
     */
    max_batch: number;
  };
  weights:
    | {
        source: 'random';
        seed: number;
      }
    | {
        source: 'checkpoint';
        checkpoint: string;
        checkpoint_sha256: Sha256;
      }
    | {
        source: 'pretrained';
        seed: number;
        /**
         * the Hugging Face Phi directory's name
         */
        llm?: string;
        /**
         * the Swin checkpoint's file name
         */
        vision?: string;
      };
  /**
   * Every file of the bundle except manifest.json, by path relative to the bundle directory.
   */
  files: {
    [k: string]: {
      sha256: Sha256;
      bytes: number;
    };
  };
}
export interface Precision {
  dtype: 'float32' | 'float16';
  graphs: {
    vision_encoder: RelativePath;
    embed_tokens: RelativePath;
    decoder_model_merged: RelativePath;
    perception_decoder: RelativePath;
    /**
     * Optional (bundles exported before it existed have none): greedy decoding of a batch (each row to its <PER>, EOS or the token cap) in one run, an ONNX Loop over the decoder with the KV cache as loop-carried state (BUNDLE.md).
     */
    decoder_generate?: string;
  };
}

/** The graphs of a precision, in the order `$defs.precision.properties.graphs.required` lists them. */
export const GRAPH_NAMES = ['vision_encoder', 'embed_tokens', 'decoder_model_merged', 'perception_decoder'] as const;
/** The graphs a precision may have (`$defs.precision.properties.graphs.properties` not in `required`). */
export const OPTIONAL_GRAPH_NAMES = ['decoder_generate'] as const;

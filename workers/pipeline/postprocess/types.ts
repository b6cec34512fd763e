// Inputs and constants of post-processing (one image, one task).
import type { Detection } from '../../../contracts/result.js';
import type { Geometry } from './geometry.js';

/** Raw perception_decoder outputs of one image (batch index removed). */
export interface RawOutputs {
  /** [Q,P] raw dot products; for word tasks the last column is the background phrase. */
  logits: Float32Array;
  /** [Q,M,M] mask logits. */
  masks: Float32Array;
  /** [Q,4] sigmoid cx,cy,w,h in the padded S×S frame. */
  boxes: Float32Array;
  numQueries: number;
  numPhrases: number;
  maskSize: number;
}

/** Everything post-processing of one task reads besides the task: what a post-processing thread is sent. */
export interface PostprocessInput {
  raw: RawOutputs;
  geometry: Geometry;
  constants: PostprocessConstants;
  /** The query count K of sentence and instance tasks (manifest dims.num_queries). */
  numQueries: number;
}

/** The manifest `postprocess` section. */
export interface PostprocessConstants {
  mask_logit_threshold: number;
  panoptic_score_threshold: number;
  panoptic_overlap_threshold: number;
  panoptic_mask_threshold: number;
  instance_top_k: number;
  generalised_sentence_threshold: number;
  no_target_threshold: number;
}

export type Outputs = ('boxes' | 'masks')[];
export type Box = NonNullable<Detection['box']>;

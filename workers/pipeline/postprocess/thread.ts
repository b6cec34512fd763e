// Entry point of a post-processing thread (postprocess-pool.ts): post-processing is per-pixel JavaScript at the
// original image size, so it runs here, beside the thread that owns the ORT sessions, not on it: while one job is
// post-processed the sessions run the next batch.
import { serve } from '../../threads/rpc.js';
import { postprocessFrom } from './index.js';

export const postprocessApi = { postprocess: postprocessFrom };
export type PostprocessApi = typeof postprocessApi;

serve(postprocessApi);

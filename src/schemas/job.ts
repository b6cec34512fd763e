// Responses: the job (lib/queue's JobView plus links), the result document (contracts/result.ts) and
// problem details (RFC 9457).
import { PerceptionResult } from '../../contracts/result.js';
import { JobView } from '../../contracts/job-view.js';
import { Problem } from '../../contracts/problem.js';
import { z } from './zod.js';

export const JobLinks = z.object({
  self: z.string(),
  cancel: z.string(),
  /** The full result JSON (GET), available once the job succeeded. */
  result: z.string(),
  overlay: z.string(),
});

export const Job = JobView.extend({ urls: JobLinks }).openapi('Job');
export type Job = z.infer<typeof Job>;

export function jobLinks(id: string): z.infer<typeof JobLinks> {
  const self = `/v1/jobs/${encodeURIComponent(id)}`;
  return { self, cancel: `${self}/cancel`, result: `${self}/result`, overlay: `${self}/overlay.png` };
}

export const toPublicJob = (view: JobView): Job => ({ ...view, urls: jobLinks(view.id) });

export { PerceptionResult, Problem };

// GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel, GET /v1/jobs/{id}/result, GET /v1/jobs/{id}/overlay.png.
// A job is visible only to the key that created it; to any other key it does not exist (404).
import { Hono } from 'hono';
import { isTerminal, type JobView } from '../../contracts/job-view.js';
import { overlayKey } from '../../lib/storage/index.js';
import type { AppDeps, AppEnv } from '../context.js';
import { ProblemError } from '../problem.js';
import { toPublicJob } from '../schemas/job.js';

const ID = /^[A-Za-z0-9_-]{1,64}$/;

const notFound = (id: string): ProblemError => new ProblemError(404, 'job-not-found', 'Job not found', `no job ${id} for this API key`);

/** Why a job has no result or overlay to serve, in the words of its status: not yet (queued, running or
 *  retrying), never (it ended failed, canceled or expired: only a success is rendered) or, for a success, not
 *  stored: the overlay is rendered just after the result is, best effort, and both go at retention. */
function missing(view: JobView, what: 'result' | 'overlay'): string {
  if (view.status === 'succeeded') {
    return what === 'result'
      ? `the result of job ${view.id} is no longer stored`
      : `job ${view.id} succeeded but its overlay is not stored: it is rendered just after the result (retry shortly), and none exists if rendering failed or after retention`;
  }
  if (isTerminal(view.status)) return `job ${view.id} ended ${view.status} without ${what === 'result' ? 'a result' : 'an overlay'}; only a succeeded job has one`;
  return `job ${view.id} is ${view.status}; the ${what} exists once it succeeds`;
}

export function jobRoutes({ jobs, store }: AppDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();

  async function own(id: string, keyId: string): Promise<JobView> {
    if (!ID.test(id)) throw notFound(id);
    const view = await jobs.get(id);
    if (!view || view.key_id !== keyId) throw notFound(id);
    return view;
  }

  r.get('/:id', async (c) => c.json(toPublicJob(await own(c.req.param('id'), c.var.apiKey.id))));

  r.post('/:id/cancel', async (c) => {
    const id = c.req.param('id');
    await own(id, c.var.apiKey.id);
    const view = await jobs.cancel(id);
    if (!view) throw notFound(id);
    return c.json(toPublicJob(view));
  });

  r.get('/:id/result', async (c) => {
    const id = c.req.param('id');
    const view = await own(id, c.var.apiKey.id);
    if (view.status !== 'succeeded' || !view.result_key) throw new ProblemError(404, 'result-not-available', 'No result', missing(view, 'result'));
    const body = await store.get(view.result_key);
    if (!body) throw new ProblemError(404, 'result-not-available', 'No result', missing(view, 'result'));
    return c.body(new Uint8Array(body), 200, { 'content-type': 'application/json' });
  });

  r.get('/:id/overlay.png', async (c) => {
    const id = c.req.param('id');
    const view = await own(id, c.var.apiKey.id);
    const png = await store.get(overlayKey(id));
    if (!png) throw new ProblemError(404, 'overlay-not-available', 'No overlay', missing(view, 'overlay'));
    return c.body(new Uint8Array(png), 200, { 'content-type': 'image/png' });
  });

  return r;
}

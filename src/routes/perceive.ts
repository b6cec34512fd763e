// POST /v1/perceive: validate everything, store the input image, create the job, answer 202 + Location
// (or 200 with the finished job under `Prefer: wait=N`). The rate-limit count, the Idempotency-Key, the quota
// and the job's creation are one script run (jobs.submit, submitJob-13.lua): one Redis command per accepted
// job. Uploaded, base64 and URL images are stored before it, since the job can be picked up the moment it
// exists; a refused request's stored input is deleted again.
import { createHash, randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import { JOB_SCHEMA_VERSION, type JobPayload } from '../../contracts/job.js';
import { isTerminal, type JobView } from '../../contracts/job-view.js';
import { JobExistsError, type Submitted } from '../../lib/queue/index.js';
import type { Allowlist } from '../../lib/net/ssrf.js';
import { inputKey } from '../../lib/storage/index.js';
import type { AppDeps, AppEnv } from '../context.js';
import { checkRequestCaps } from '../intake/checks.js';
import { resolveImage, type ResolvedImage } from '../intake/image.js';
import type { ProbeCache } from '../intake/s3-ref.js';
import { readPerceiveRequest, type ParsedRequest } from '../intake/request.js';
import { Idempotency, parseIdempotencyKey } from '../admission/idempotency.js';
import { ProblemError } from '../problem.js';
import { applyRateLimit, type RateLimiter } from '../admission/rate-limit.js';
import { jsonWithHeaders, setResponseHeader } from '../response-headers.js';
import { quotaExceeded, type Quota } from '../admission/quota.js';
import { maxRequestBytes, MAX_WAIT_S } from '../schemas/perceive.js';
import { jobLinks, toPublicJob } from '../schemas/job.js';

/** `Prefer: wait=N` (RFC 7240): seconds to hold the response, capped at `maxS` (MAX_PREFER_WAIT_S, itself at
 *  most MAX_WAIT_S); 0 when absent. */
export function preferredWaitS(header: string | undefined, maxS: number = MAX_WAIT_S): number {
  const m = header ? /(?:^|[,;\s])wait\s*=\s*"?(\d{1,6})"?/i.exec(header) : null;
  return m ? Math.min(Number(m[1]), maxS, MAX_WAIT_S) : 0;
}

/** What makes two requests "the same" for Idempotency-Key: the validated fields and the image identity. */
function fingerprint(req: ParsedRequest): string {
  const h = createHash('sha256').update(JSON.stringify(req.fields));
  const img = req.image;
  if (img.kind === 'file') h.update('file:').update(img.bytes);
  else if (img.kind === 'base64') h.update('base64:').update(img.text);
  else h.update(`${img.kind}:`).update(img.kind === 'url' ? img.url : img.ref);
  return h.digest('hex');
}

export interface PerceiveDeps extends AppDeps {
  allowlist: Allowlist;
  idempotency: Idempotency;
  limiter: RateLimiter;
  quota: Quota;
  probes: ProbeCache;
}

export function perceive(d: PerceiveDeps) {
  const { config, store, jobs } = d;
  const { maxImageBytes } = config.limits;

  async function respond(c: Context<AppEnv>, view: JobView, waitS: number): Promise<Response> {
    let job = view;
    if (waitS > 0 && !isTerminal(job.status)) job = (await jobs.waitForTerminal(job.id, waitS * 1000)) ?? job;
    const headers: Record<string, string> = { location: jobLinks(job.id).self };
    if (waitS > 0) headers['preference-applied'] = `wait=${waitS}`;
    return jsonWithHeaders(c, toPublicJob(job), isTerminal(job.status) && waitS > 0 ? 200 : 202, headers);
  }

  return async (c: Context<AppEnv>): Promise<Response> => {
    const key = c.get('apiKey');
    let idemKey: string | null;
    let req: ParsedRequest;
    let image: ResolvedImage;
    try {
      idemKey = parseIdempotencyKey(c.req.header('idempotency-key'));
      req = await readPerceiveRequest(c, maxImageBytes, maxRequestBytes(maxImageBytes));
      checkRequestCaps(req.fields, config.limits, d.allowlist, req.base);
      image = await resolveImage(req.image, key.id, { config, store, allowlist: d.allowlist, probes: d.probes, log: c.get('log') });
    } catch (e) {
      // Refused requests count too (and are 429 once the budget is spent), so invalid bodies cannot flood.
      applyRateLimit(c, await d.limiter.hit(key));
      throw e;
    }
    const waitS = preferredWaitS(c.req.header('prefer'), config.maxPreferWaitS);

    const jobId = randomUUID();
    const createdAt = Date.now();
    const deadlineAt = createdAt + (req.fields.deadline_s !== undefined ? req.fields.deadline_s * 1000 : config.jobDeadlineMs);
    const storageKey = image.storageKey ?? inputKey(jobId);
    // Built only from validated request fields and values computed here; the type pins the contract,
    // so a second runtime parse (as much CPU as validating the request) would add nothing.
    const payload: JobPayload = {
      v: JOB_SCHEMA_VERSION,
      job_id: jobId,
      key_id: key.id,
      request_id: c.get('requestId'),
      image: { storage_key: storageKey, content_type: image.info.contentType, width: image.info.width, height: image.info.height, bytes: image.info.bytes },
      tasks: req.fields.tasks,
      caption: req.fields.caption,
      created_at: new Date(createdAt).toISOString(),
      deadline_at: new Date(deadlineAt).toISOString(),
      ...(req.fields.webhook ? { webhook: req.fields.webhook } : {}),
      ...(req.fields.metadata ? { metadata: req.fields.metadata } : {}),
    };
    const fp = idemKey ? fingerprint(req) : '';

    // An input written for a job that is not created would otherwise stay until someone sweeps it.
    const dropInput = async (): Promise<void> => {
      if (image.bytes) await store.delete(storageKey).catch(() => undefined);
    };
    const rate = d.limiter.window(key);
    let submitted: Submitted;
    try {
      if (image.bytes) await store.put(storageKey, image.bytes, image.info.contentType);
      submitted = await jobs.submit(payload, {
        rate,
        quota: d.quota.of(key),
        ...(idemKey ? { idempotency: d.idempotency.admission(key.id, idemKey, fp, jobId) } : {}),
      });
    } catch (e) {
      await dropInput();
      throw e;
    }
    if (submitted.outcome !== 'created') await dropInput();
    applyRateLimit(c, { key, count: submitted.count, resetS: rate.resetS });
    switch (submitted.outcome) {
      case 'created':
        break;
      case 'quota-full':
        throw quotaExceeded(key.id, submitted.active, key.max_concurrent_jobs);
      case 'job-exists':
        throw new JobExistsError(jobId);
      case 'idempotency-key-taken': {
        const priorId = d.idempotency.replayOf(submitted.prior, fp);
        const prior = await jobs.get(priorId);
        if (!prior) throw new ProblemError(404, 'not-found', 'Job gone', `job ${priorId} created with this Idempotency-Key has passed retention`);
        setResponseHeader(c, 'idempotent-replayed', 'true');
        return respond(c, prior, waitS);
      }
      case 'rate-limited':
        throw new Error('applyRateLimit let a rate-limited request through'); // unreachable: it threw 429
    }
    if (d.log.isLevelEnabled('info')) {
      c.get('log')().info({ job_id: jobId, key_id: key.id, image: image.info, tasks: req.fields.tasks.length }, 'job accepted');
    }
    return respond(c, submitted.view, waitS);
  };
}

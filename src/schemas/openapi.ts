// The OpenAPI document, generated from the same zod schemas the routes validate with.
// `npm run openapi` writes it to openapi.yaml; test/openapi.test.ts fails when the two drift.
import { OpenApiGeneratorV31, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { stringify } from 'yaml';
import { WebhookBody } from '../../contracts/job-view.js';
import { Task } from '../../contracts/task.js';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../../contracts/webhook.js';
import { loadConfig } from '../../lib/config.js';
import { loadQueueSettings } from '../../lib/queue/settings.js';
import { Job, PerceptionResult, Problem } from './job.js';
import { PerceiveJsonRequest, PerceiveMultipartBody, PerceiveMultipartRequest, MAX_WAIT_S } from './perceive.js';
import { Upload, UploadRequest } from './uploads.js';
import { z } from './zod.js';

/** An 8×8 PNG: the example request is one the service accepts (tools such as schemathesis send it). */
const EXAMPLE_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAEUlEQVQI12M44KCAFTEMLQkASmxIAUh/uh4AAAAASUVORK5CYII=';

function buildRegistry(): OpenAPIRegistry {
  const r = new OpenAPIRegistry();
  const bearer = r.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  const security = [{ [bearer.name]: [] }];
  // Schemas built before zod was extended (contracts/, lib/queue/) lack .openapi(): register a clone.
  // zod v4 copies prototype methods onto instances at construction, and .meta() constructs a new one.
  const named = <T extends z.ZodType>(name: string, s: T): T => r.register(name, s.meta({ description: s.description }) as T);
  named('Task', Task);
  const ProblemRef = named('Problem', Problem);
  const JobRef = r.register('Job', Job);
  const ResultRef = named('PerceptionResult', PerceptionResult);
  // Named by PerceiveMultipartBody's `request` part (its contentSchema); no operation uses it directly.
  r.register('PerceiveMultipartRequest', PerceiveMultipartRequest);

  const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ProblemRef } } });
  const rateHeaders = {
    RateLimit: { description: 'Remaining quota and seconds to reset (IETF draft)', schema: { type: 'string' as const } },
    'RateLimit-Policy': { description: 'Quota and window of this key', schema: { type: 'string' as const } },
  };
  const common = {
    401: problem('Missing or invalid API key'),
    429: { ...problem('Rate limit or concurrent-job quota exceeded'), headers: { 'Retry-After': { schema: { type: 'integer' as const } }, ...rateHeaders } },
    503: { ...problem('Redis or storage did not answer; retry'), headers: { 'Retry-After': { schema: { type: 'integer' as const } } } },
  };
  // Answered by the HTTP server itself (src/server.ts) when the headers or the body do not arrive in time.
  const timeout = { 408: problem('The request (headers or body) did not arrive within the server\'s request timeout (request-timeout)') };
  const JobId = z.object({ id: z.string().openapi({ param: { description: 'Job id' } }) });

  r.registerPath({
    method: 'post',
    path: '/v1/perceive',
    operationId: 'submitJob',
    summary: 'Submit an image with one or more perception tasks',
    security,
    request: {
      headers: z.object({
        'Idempotency-Key': z.string().min(1).max(257).optional().openapi({
          description: 'Same key + same body returns the same job (also while the first request is still answering); same key + another body is 422. ' +
            '1-255 visible ASCII characters, bare or as a quoted structured-field string; anything else is 400 invalid-idempotency-key.',
        }),
        Prefer: z.string().optional().openapi({ description: `wait=N (N ≤ ${MAX_WAIT_S}) answers 200 with the finished job when it finishes in time.`, example: 'wait=10' }),
      }),
      body: {
        required: true,
        content: {
          'application/json': { schema: PerceiveJsonRequest, example: { image: { base64: EXAMPLE_PNG }, tasks: [{ type: 'words', phrases: ['dog', 'frisbee'] }] } },
          'multipart/form-data': {
            schema: PerceiveMultipartBody,
            encoding: { request: { contentType: 'application/json' }, image: { contentType: 'image/*, application/octet-stream' } },
          },
        },
      },
    },
    responses: {
      200: { description: 'The finished job (Prefer: wait and it finished in time)', content: { 'application/json': { schema: JobRef } } },
      202: {
        description: 'Accepted; poll Location',
        headers: { Location: { schema: { type: 'string' } }, ...rateHeaders },
        content: { 'application/json': { schema: JobRef } },
      },
      400: problem(
        'Malformed request: the body is not valid JSON (malformed-json; a multipart `request` part too, pointer /request), the multipart ' +
        'body cannot be parsed (malformed-multipart), the Idempotency-Key is not a valid key (invalid-idempotency-key), or the body was not ' +
        'received completely (request-aborted)',
      ),
      ...timeout,
      413: problem('Request or image larger than allowed'),
      415: problem('Content type is neither application/json nor multipart/form-data'),
      422: problem('Invalid request: one pointer per invalid field; undecodable, unsupported or oversized image; unreachable URL'),
      ...common,
    },
  });
  r.registerPath({
    method: 'post',
    path: '/v1/uploads',
    operationId: 'createUpload',
    summary: 'A presigned S3 PUT URL for one image, to submit as image.s3 afterwards (large images, serverless gateways)',
    security,
    request: { body: { required: true, content: { 'application/json': { schema: UploadRequest, example: { content_type: 'image/png', size_bytes: 48_213 } } } } },
    responses: {
      201: { description: 'Upload URL issued', content: { 'application/json': { schema: Upload } } },
      400: problem('Malformed request: the body is not valid JSON (malformed-json), or it was not received completely (request-aborted)'),
      ...timeout,
      413: problem('Request body over 16 KiB'),
      415: problem('Content type is not application/json'),
      422: problem('Invalid request or size over the image limit'),
      501: problem('Storage is not S3: send the image inline'),
      ...common,
    },
  });
  r.registerPath({
    method: 'get', path: '/v1/jobs/{id}', operationId: 'getJob', summary: 'Job status, stage, timings, error and (small) result', security,
    request: { params: JobId },
    responses: { 200: { description: 'The job', content: { 'application/json': { schema: JobRef } } }, 404: problem('No such job for this key'), ...common },
  });
  r.registerPath({
    method: 'post', path: '/v1/jobs/{id}/cancel', operationId: 'cancelJob', summary: 'Cancel a queued or running job', security,
    request: { params: JobId },
    responses: { 200: { description: 'The job after the cancel request', content: { 'application/json': { schema: JobRef } } }, 404: problem('No such job for this key'), ...common },
  });
  r.registerPath({
    method: 'get', path: '/v1/jobs/{id}/result', operationId: 'getJobResult', summary: 'The full result document', security,
    request: { params: JobId },
    responses: { 200: { description: 'Result', content: { 'application/json': { schema: ResultRef } } }, 404: problem('No such job, or no result (yet)'), ...common },
  });
  r.registerPath({
    method: 'get', path: '/v1/jobs/{id}/overlay.png', operationId: 'getJobOverlay', summary: 'Rendered overlay of the result', security,
    request: { params: JobId },
    responses: {
      200: { description: 'PNG', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } },
      404: problem('No such job, or no overlay: not yet (the job has not succeeded), or never (it ended failed, canceled or expired)'),
      ...common,
    },
  });
  const Health = z.object({ status: z.enum(['ok', 'unavailable']), checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() })).optional() }).openapi('Health');
  r.registerPath({ method: 'get', path: '/healthz', operationId: 'healthz', summary: 'Liveness', responses: { 200: { description: 'Alive', content: { 'application/json': { schema: Health } } } } });
  r.registerPath({
    method: 'get', path: '/readyz', operationId: 'readyz', summary: 'Readiness: Redis, storage and at least one live worker with a loaded model',
    responses: { 200: { description: 'Ready', content: { 'application/json': { schema: Health } } }, 503: { description: 'Not ready', content: { 'application/json': { schema: Health } } } },
  });
  r.registerPath({ method: 'get', path: '/metrics', operationId: 'metrics', summary: 'Prometheus metrics', responses: { 200: { description: 'Text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } });
  registerWebhooks(r, named);
  return r;
}

const EVENT_DESCRIPTIONS: Record<WebhookEvent, string> = {
  'job.started': 'A worker began processing the job (once per job, however many attempts it takes).',
  'job.succeeded': 'The job succeeded: `data.result` holds the result when it is small enough to inline, else fetch `GET /v1/jobs/{id}/result`.',
  'job.failed': 'The job failed: `data.error` says why (problem details).',
  'job.canceled': 'The job was canceled on request or stopped at its deadline while running: `data.error` says which.',
  'job.expired': 'The job\'s deadline passed while it was still queued: it never ran.',
};

/** The webhook (OpenAPI 3.1 `webhooks`): one entry per event in contracts/webhook.ts, the envelope from
 *  contracts/job-view.ts, the Standard Webhooks headers and the delivery policy of workers/webhooks. */
function registerWebhooks(r: OpenAPIRegistry, named: <T extends z.ZodType>(name: string, s: T) => T): void {
  // The defaults the services run with; the environment can change them.
  const queue = loadQueueSettings({});
  const config = loadConfig({});
  const duration = (ms: number): string => (ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);
  const WebhookJob = named('WebhookJob', WebhookBody.shape.data);
  const Envelope = z.object({ ...WebhookBody.shape, data: WebhookJob });
  const headers = z.object({
    'webhook-id': z.string().openapi({
      description: 'Unique per job and event and the same on every retry of that delivery: receivers deduplicate on it (delivery is at least once).',
      example: 'msg_0b7c3f7e-2f0e-4c1b-9a57-0d1f6f1e2a3b_job_succeeded',
    }),
    'webhook-timestamp': z.string().openapi({
      description: 'Unix seconds when this attempt was signed (new on every retry). Refuse deliveries whose timestamp is far from now (replays).',
      example: '1767225600',
    }),
    'webhook-signature': z.string().openapi({
      description: 'Space-separated `v1,<base64 signature>`: HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the ' +
        'base64-decoded part of the API key\'s `whsec_` secret (Standard Webhooks). Verify it over the raw bytes, before parsing the JSON.',
      example: 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
    }),
  });
  const policy =
    'Sent for the events the job subscribed to (`webhook.events` of the request; default all) to `webhook.url`, signed per ' +
    '[Standard Webhooks](https://www.standardwebhooks.com): POST, `content-type: application/json`, the headers below. ' +
    'Delivery: only a 2xx answer counts as delivered; any other status, a redirect (never followed), a timeout ' +
    `(WEBHOOK_TIMEOUT_MS, default ${config.webhook.timeoutMs / 1000} s) or a network error is retried with exponential backoff and jitter ` +
    `(WEBHOOK_BACKOFF_BASE_MS, default ${duration(queue.webhookBackoffBaseMs)}, doubling per attempt up to WEBHOOK_BACKOFF_MAX_MS, default ` +
    `${duration(queue.webhookBackoffMaxMs)}; each wait is 50-100% of that), for at most WEBHOOK_MAX_ATTEMPTS attempts ` +
    `(default ${config.webhook.maxAttempts}). 410 Gone stops the delivery and disables the job's webhook: none of its later events ` +
    'are sent (they are listed as refused); a URL the address policy refuses is not retried either. Every attempt is listed on the job ' +
    '(`webhook.attempts`, with `next_attempt_at` when a retry is due). Every retry sends the same body bytes under the same webhook-id. ' +
    'Ordering: each event is delivered on its own and deliveries are not ordered across events (a retried `job.started` can arrive ' +
    'after `job.succeeded`): order by the envelope `timestamp`, or trust the job\'s `data.status`, and treat a terminal status as final.';
  for (const event of WEBHOOK_EVENTS) {
    r.registerWebhook({
      method: 'post',
      path: event,
      summary: `${event}: ${EVENT_DESCRIPTIONS[event]}`,
      description: policy,
      request: {
        headers,
        body: {
          required: true,
          content: { 'application/json': { schema: Envelope.extend({ type: z.literal(event).openapi({ description: 'The event.' }) }) } },
        },
      },
      responses: {
        200: { description: 'Any 2xx: delivered. The body of the answer is ignored.' },
        410: { description: 'Gone: the delivery is not retried and no later event of this job is sent.' },
        default: { description: 'Anything else (or no answer in time, or a redirect): retried with backoff until the attempts are spent.' },
      },
    });
  }
}

/** zod tuples come out as `prefixItems` alone, which in JSON Schema 2020-12 lets any further items through, and
 *  which tools read unevenly (schemathesis 4 rewrites it to draft-4 `items: [...]` and then rejects its own
 *  rewrite). Every tuple of this API has one item type (boxes, mask sizes): say so as `items` with the length
 *  fixed, which is exact, where a heterogeneous tuple keeps its `prefixItems`, closed with `items: false`. */
function closeTuples(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(closeTuples);
  if (!node || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  const prefix = o.prefixItems;
  if (Array.isArray(prefix) && prefix.length > 0 && o.items === undefined) {
    const first = JSON.stringify(prefix[0]);
    if (prefix.every((p) => JSON.stringify(p) === first)) {
      delete o.prefixItems;
      Object.assign(o, { items: prefix[0], minItems: prefix.length, maxItems: prefix.length });
    } else {
      o.items = false;
    }
  }
  Object.values(o).forEach(closeTuples);
}

export function openApiDocument(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const doc = generate();
  closeTuples(doc);
  return doc;
}

function generate(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  return new OpenApiGeneratorV31(buildRegistry().definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'MVP-LM Serve',
      version: '1.0.0',
      description:
        'Boxes, COCO-RLE masks and captions from category words or a referring sentence. Asynchronous jobs; results are versioned JSON. ' +
        'Every error is application/problem+json (RFC 9457). On any path: a method the path does not serve is 405 with `Allow`; ' +
        'the HTTP server answers 408 (request-timeout) when the headers or body do not arrive in time, 431 ' +
        '(request-header-fields-too-large) for oversized headers and 400 (malformed-http) for a request that is not HTTP/1.1. ' +
        'Job events are sent as signed webhooks (see `webhooks`).',
    },
    servers: [{ url: '/' }],
  });
}

export function openApiYaml(): string {
  return stringify(openApiDocument(), { aliasDuplicateObjects: false, lineWidth: 0 });
}

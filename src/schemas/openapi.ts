// The OpenAPI document, generated from the same zod schemas the routes validate with.
// `npm run openapi` writes it to openapi.yaml; test/openapi.test.ts fails when the two drift.
import { OpenApiGeneratorV31, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { stringify } from 'yaml';
import { Task } from '../../contracts/task.js';
import { Job, PerceptionResult, Problem } from './job.js';
import { PerceiveJsonRequest, PerceiveMultipartBody, MAX_WAIT_S } from './perceive.js';
import { Upload, UploadRequest } from './uploads.js';
import { z } from './zod.js';

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
  const JobId = z.object({ id: z.string().openapi({ param: { description: 'Job id' } }) });

  r.registerPath({
    method: 'post',
    path: '/v1/perceive',
    summary: 'Submit an image with one or more perception tasks',
    security,
    request: {
      headers: z.object({
        'Idempotency-Key': z.string().max(255).optional().openapi({ description: 'Same key + same body returns the same job (also while the first request is still answering); same key + another body is 422.' }),
        Prefer: z.string().optional().openapi({ description: `wait=N (N ≤ ${MAX_WAIT_S}) answers 200 with the finished job when it finishes in time.`, example: 'wait=10' }),
      }),
      body: {
        required: true,
        content: {
          'application/json': { schema: PerceiveJsonRequest },
          'multipart/form-data': { schema: PerceiveMultipartBody },
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
      413: problem('Request or image larger than allowed'),
      415: problem('Content type is neither application/json nor multipart/form-data'),
      422: problem('Invalid request: one pointer per invalid field; undecodable, unsupported or oversized image; unreachable URL'),
      ...common,
    },
  });
  r.registerPath({
    method: 'post',
    path: '/v1/uploads',
    summary: 'A presigned S3 PUT URL for one image, to submit as image.s3 afterwards (large images, serverless gateways)',
    security,
    request: { body: { required: true, content: { 'application/json': { schema: UploadRequest } } } },
    responses: {
      201: { description: 'Upload URL issued', content: { 'application/json': { schema: Upload } } },
      413: problem('Request body over 16 KiB'),
      415: problem('Content type is not application/json'),
      422: problem('Invalid request or size over the image limit'),
      501: problem('Storage is not S3: send the image inline'),
      ...common,
    },
  });
  r.registerPath({
    method: 'get', path: '/v1/jobs/{id}', summary: 'Job status, stage, timings, error and (small) result', security,
    request: { params: JobId },
    responses: { 200: { description: 'The job', content: { 'application/json': { schema: JobRef } } }, 404: problem('No such job for this key'), ...common },
  });
  r.registerPath({
    method: 'post', path: '/v1/jobs/{id}/cancel', summary: 'Cancel a queued or running job', security,
    request: { params: JobId },
    responses: { 200: { description: 'The job after the cancel request', content: { 'application/json': { schema: JobRef } } }, 404: problem('No such job for this key'), ...common },
  });
  r.registerPath({
    method: 'get', path: '/v1/jobs/{id}/result', summary: 'The full result document', security,
    request: { params: JobId },
    responses: { 200: { description: 'Result', content: { 'application/json': { schema: ResultRef } } }, 404: problem('No such job, or no result (yet)'), ...common },
  });
  r.registerPath({
    method: 'get', path: '/v1/jobs/{id}/overlay.png', summary: 'Rendered overlay of the result', security,
    request: { params: JobId },
    responses: { 200: { description: 'PNG', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } }, 404: problem('No such job, or no overlay (yet)'), ...common },
  });
  const Health = z.object({ status: z.enum(['ok', 'unavailable']), checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() })).optional() }).openapi('Health');
  r.registerPath({ method: 'get', path: '/healthz', summary: 'Liveness', responses: { 200: { description: 'Alive', content: { 'application/json': { schema: Health } } } } });
  r.registerPath({
    method: 'get', path: '/readyz', summary: 'Readiness: Redis, storage and at least one live worker with a loaded model',
    responses: { 200: { description: 'Ready', content: { 'application/json': { schema: Health } } }, 503: { description: 'Not ready', content: { 'application/json': { schema: Health } } } },
  });
  r.registerPath({ method: 'get', path: '/metrics', summary: 'Prometheus metrics', responses: { 200: { description: 'Text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } });
  return r;
}

export function openApiDocument(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  return new OpenApiGeneratorV31(buildRegistry().definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'MVP-LM Serve',
      version: '1.0.0',
      description: 'Boxes, COCO-RLE masks and captions from category words or a referring sentence. Asynchronous jobs; results are versioned JSON.',
    },
    servers: [{ url: '/' }],
  });
}

export function openApiYaml(): string {
  return stringify(openApiDocument(), { aliasDuplicateObjects: false, lineWidth: 0 });
}

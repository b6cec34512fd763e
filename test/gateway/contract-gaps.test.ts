// Issue 14, items 11 and 13, in-process against the real Redis and S3 server: a known path under another
// method is 405 with Allow, every response carries nosniff, the overlay of a job that ended without one says
// so, and openapi.yaml documents what the gateway really answers (400s, exactly one image source, the
// multipart `request` part's schema, the webhooks with their envelope, headers, signature and delivery policy).
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { JobView } from '../../contracts/job-view.js';
import { jobProblems } from '../../contracts/problem.js';
import { WEBHOOK_EVENTS } from '../../contracts/webhook.js';
import { enqueueWebhook } from '../../lib/webhooks/delivery.js';
import { PerceiveJsonRequest } from '../../src/schemas/perceive.js';
import { signWebhook } from '../../workers/webhooks/sign.js';
import { KEYS, openHarness, png, problemOf, WORDS, type Harness } from './harness.js';

type Operation = { responses: Record<string, unknown>; requestBody?: { content: Record<string, { schema: unknown; encoding?: unknown }> }; parameters?: { name: string; in: string; required?: boolean }[]; description?: string };
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  webhooks: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Record<string, unknown>> };
};
const doc = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Doc;
const ajv = new Ajv2020.default({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ $id: 'doc', components: doc.components });
/** A validator for a schema of the document, its $refs resolved against the document's components. */
const validator = (schema: unknown) => ajv.compile({ $id: `inline-${Math.random()}`, ...JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')) });

let h: Harness;
let image: Buffer;
const auth = { authorization: `Bearer ${KEYS.alpha}` };

beforeAll(async () => {
  h = await openHarness();
  image = await png();
});
afterAll(() => h.close());

async function submit(): Promise<string> {
  const res = await h.post({ image: { base64: image.toString('base64') }, tasks: WORDS });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe('405 with Allow on a known path (item 11)', () => {
  it('every documented path answers the methods it does not serve with 405 problem+json and the Allow the document lists', async () => {
    const id = await submit();
    let checked = 0;
    for (const [template, ops] of Object.entries(doc.paths)) {
      const path = template.replace('{id}', id);
      const documented = Object.keys(ops).map((m) => m.toUpperCase());
      const allow = [...documented, ...(documented.includes('GET') ? ['HEAD'] : [])].sort().join(', ');
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
        if (documented.includes(method)) continue;
        const res = await h.app.request(path, { method, headers: auth });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
        const p = await problemOf(res);
        expect(p.type).toBe('/problems/method-not-allowed');
        expect(p.detail).toContain(`${method} is not allowed on ${path}`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('PUT /v1/perceive is 405 (the issue), HEAD on a POST-only path too; an unknown path stays 404; no key is still 401', async () => {
    const put = await h.app.request('/v1/perceive', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('POST');
    const head = await h.app.request('/v1/uploads', { method: 'HEAD', headers: auth });
    expect(head.status).toBe(405);
    expect(head.headers.get('allow')).toBe('POST');
    const docs = await h.app.request('/docs/swagger-ui.css', { method: 'DELETE' });
    expect(docs.status).toBe(405);
    expect(docs.headers.get('allow')).toBe('GET, HEAD');
    for (const path of ['/v1/nothing', '/v1/jobs/a/b/c', '/v1/perceive/extra', '/nope']) {
      const res = await h.app.request(path, { method: 'PUT', headers: auth });
      expect(res.status, path).toBe(404);
      expect((await problemOf(res)).type).toBe('/problems/not-found');
    }
    expect((await h.app.request('/v1/perceive', { method: 'PUT' })).status).toBe(401);
  });
});

describe('X-Content-Type-Options: nosniff (item 13)', () => {
  it('is on every kind of response: success, JSON built on the hot path, problems, docs, metrics', async () => {
    const id = await submit();
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(image)]), 'a.png');
    form.set('request', '{not json');
    const responses: [string, Response | Promise<Response>][] = [
      ['healthz', h.app.request('/healthz')],
      ['readyz', h.app.request('/readyz')],
      ['metrics', h.app.request('/metrics')],
      ['openapi.yaml', h.app.request('/openapi.yaml')],
      ['docs', h.app.request('/docs')],
      ['docs asset', h.app.request('/docs/swagger-ui.css')],
      ['202 perceive', h.post({ image: { base64: image.toString('base64') }, tasks: WORDS })],
      ['job', h.get(`/v1/jobs/${id}`)],
      ['401', h.app.request(`/v1/jobs/${id}`)],
      ['404', h.get('/v1/jobs/nope')],
      ['404 route', h.app.request('/nope')],
      ['405', h.app.request('/healthz', { method: 'POST' })],
      ['415', h.post('x', { headers: { 'content-type': 'text/plain' } })],
      ['400 json', h.post('{')],
      ['400 multipart', h.post(form)],
      ['422', h.post({ tasks: WORDS })],
    ];
    for (const [name, pending] of responses) {
      const res = await pending;
      expect(res.headers.get('x-content-type-options'), `${name} (${res.status})`).toBe('nosniff');
      await res.arrayBuffer();
    }
  });
});

describe('the overlay of a job without one (item 13)', () => {
  async function overlayDetail(id: string): Promise<string> {
    const res = await h.get(`/v1/jobs/${id}/overlay.png`);
    expect(res.status).toBe(404);
    const p = await problemOf(res);
    expect(p.type).toBe('/problems/overlay-not-available');
    return p.detail!;
  }

  it('says plainly that a canceled, failed or expired job ended without an overlay; a queued one has none yet', async () => {
    const queued = await submit();
    expect(await overlayDetail(queued)).toBe(`job ${queued} is queued; the overlay exists once it succeeds`);

    const canceled = await submit();
    expect((await h.app.request(`/v1/jobs/${canceled}/cancel`, { method: 'POST', headers: auth })).status).toBe(200);
    const detail = await overlayDetail(canceled);
    expect(detail).toBe(`job ${canceled} ended canceled without an overlay; only a succeeded job has one`);
    expect(detail).not.toContain('(yet)');

    const failed = await submit();
    expect(await h.lifecycle.markRunning(failed, 'test-worker')).toBeTruthy();
    await h.lifecycle.markFailed(failed, jobProblems.internal('the model could not process the image'));
    expect(await overlayDetail(failed)).toContain(`job ${failed} ended failed without an overlay`);

    const expired = await submit();
    await h.lifecycle.markExpired(expired);
    expect(((await (await h.get(`/v1/jobs/${expired}`)).json()) as { status: string }).status).toBe('expired');
    expect(await overlayDetail(expired)).toContain(`job ${expired} ended expired without an overlay`);

    // The result route speaks the same way.
    const res = await h.get(`/v1/jobs/${canceled}/result`);
    expect((await problemOf(res)).detail).toBe(`job ${canceled} ended canceled without a result; only a succeeded job has one`);
  });
});

describe('openapi.yaml documents what the gateway answers (item 11)', () => {
  it('documents the 400s perceive and uploads return, and the real answers are documented statuses', async () => {
    const perceive = doc.paths['/v1/perceive']!.post!;
    const uploads = doc.paths['/v1/uploads']!.post!;
    for (const slug of ['malformed-json', 'malformed-multipart', 'invalid-idempotency-key']) {
      expect(JSON.stringify(perceive.responses['400']), slug).toContain(slug);
    }
    expect(JSON.stringify(uploads.responses['400'])).toContain('malformed-json');
    for (const op of [perceive, uploads]) expect(op.responses['408']).toBeTruthy();

    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(image)]), 'a.png');
    form.set('request', '{"tasks": [');
    const answers: [string, Response][] = [
      ['malformed-json', await h.post('{"image": ')],
      ['malformed-json', await h.post(form)],
      ['malformed-multipart', await h.app.request('/v1/perceive', { method: 'POST', headers: { ...auth, 'content-type': 'multipart/form-data; boundary=x' }, body: 'garbage' })],
      ['invalid-idempotency-key', await h.post({ image: { base64: image.toString('base64') }, tasks: WORDS }, { headers: { 'idempotency-key': '' } })],
    ];
    for (const [slug, res] of answers) {
      expect(res.status, slug).toBe(400);
      expect((await problemOf(res)).type).toBe(`/problems/${slug}`);
      expect(Object.keys(perceive.responses)).toContain(String(res.status));
    }
    const badUpload = await h.app.request('/v1/uploads', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{' });
    expect(badUpload.status).toBe(400);
    expect((await problemOf(badUpload)).type).toBe('/problems/malformed-json');
  });

  it('ImageInput expresses "exactly one of base64, url or s3" in the schema; zod keeps its message', () => {
    const schema = doc.components.schemas.ImageInput!;
    expect(schema).toMatchObject({ minProperties: 1, maxProperties: 1, additionalProperties: false });
    const validate = ajv.getSchema('doc#/components/schemas/ImageInput')!;
    expect(validate({ base64: 'aGk=' })).toBe(true);
    expect(validate({ url: 'https://example.com/a.png' })).toBe(true);
    expect(validate({ s3: 's3://bucket/a.png' })).toBe(true);
    expect(validate({})).toBe(false);
    expect(validate({ base64: 'aGk=', url: 'https://example.com/a.png' })).toBe(false);
    expect(validate({ base64: 'aGk=', url: 'https://example.com/a.png', s3: 's3://bucket/a.png' })).toBe(false);
    const two = PerceiveJsonRequest.safeParse({ image: { base64: 'aGk=', s3: 's3://bucket/a.png' }, tasks: WORDS });
    expect(two.success).toBe(false);
    expect(two.error!.issues.map((i) => i.message)).toContain('give exactly one of base64, url or s3');
    const none = PerceiveJsonRequest.safeParse({ image: {}, tasks: WORDS });
    expect(none.error!.issues.map((i) => i.message)).toContain('give exactly one of base64, url or s3');
  });

  it("PerceiveMultipartBody's request part names a schema that exists and describes the JSON it carries", () => {
    const request = (doc.components.schemas.PerceiveMultipartBody!.properties as Record<string, Record<string, unknown>>).request!;
    expect(request).toMatchObject({ type: 'string', contentMediaType: 'application/json', contentSchema: { $ref: '#/components/schemas/PerceiveMultipartRequest' } });
    expect(doc.components.schemas.PerceiveMultipartRequest).toBeTruthy();
    const validate = ajv.getSchema('doc#/components/schemas/PerceiveMultipartRequest')!;
    expect(validate({ tasks: WORDS, caption: false })).toBe(true);
    expect(validate({ tasks: WORDS, image: { base64: 'aGk=' } })).toBe(false); // the file is its own part
    const encoding = doc.paths['/v1/perceive']!.post!.requestBody!.content['multipart/form-data']!.encoding as Record<string, { contentType: string }>;
    expect(encoding.request!.contentType).toBe('application/json');
  });

  it('documents one webhook per event with the envelope, the Standard Webhooks headers and the delivery policy', async () => {
    expect(Object.keys(doc.webhooks).sort()).toEqual([...WEBHOOK_EVENTS].sort());
    // A real delivery body, as the worker builds it, for a real job view.
    const id = await submit();
    const view = (await h.deps.jobs.get(id))!;
    const subscribed: JobView = { ...view, webhook: { url: 'https://hooks.example.com/x', events: [...WEBHOOK_EVENTS], attempts: [] } };
    const secret = 'whsec_YWxwaGFhbHBoYWFscGhhYWxwaGE=';
    for (const event of WEBHOOK_EVENTS) {
      const op = doc.webhooks[event]!.post!;
      const headers = op.parameters!.filter((p) => p.in === 'header' && p.required).map((p) => p.name).sort();
      expect(headers).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp']);
      for (const words of ['2xx', '410', 'redirect', 'WEBHOOK_MAX_ATTEMPTS', 'default 12', 'jitter', 'default 30 s', 'default 2 h', '`timestamp`', 'not ordered']) {
        expect(op.description, `${event}: ${words}`).toContain(words);
      }
      const added: { name: string; data: { body: string; webhook_id: string } }[] = [];
      await enqueueWebhook({ add: async (name: string, data: never) => void added.push({ name, data }) } as never, subscribed, event);
      const body = added[0]!.data.body;
      const validate = validator(op.requestBody!.content['application/json']!.schema);
      expect(validate(JSON.parse(body)), `${event}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      expect(validate({ ...JSON.parse(body), type: event === 'job.started' ? 'job.failed' : 'job.started' })).toBe(false);
      // The signature is what the document says: v1,base64(HMAC-SHA256(secret bytes, id.timestamp.body)).
      const signed = signWebhook(secret, added[0]!.data.webhook_id, new Date(), body);
      const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
      const expected = createHmac('sha256', key).update(`${signed['webhook-id']}.${signed['webhook-timestamp']}.${body}`).digest('base64');
      expect(signed['webhook-signature']).toBe(`v1,${expected}`);
    }
  });
});

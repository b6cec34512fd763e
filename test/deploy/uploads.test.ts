// POST /v1/uploads against the real S3 server: the presigned PUT works, its key is a valid image for
// /v1/perceive, and the signature binds Content-Type and Content-Length.
//
// moto (the S3 server in tests) does not verify presigned-URL signatures, so a PUT with the wrong size or
// type would be stored by it; real S3 recomputes the signature over the headers the client sends. The
// refusal is therefore shown with the SDK's own SigV4 presigner: re-signing the same URL at the same instant
// reproduces its signature exactly, and the request with a different size or type yields another one.
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppEnv } from '../../src/context.js';
import { auth } from '../../src/middleware/auth/index.js';
import { onError } from '../../src/problem.js';
import { requestId } from '../../src/middleware/request-id/index.js';
import { uploadRoutes } from '../../src/routes/uploads.js';
import { Upload, UPLOAD_URL_TTL_S } from '../../src/schemas/uploads.js';
import { KEYS, openHarness, png, problemOf, WORDS, type Harness } from '../gateway/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await openHarness();
});
afterAll(() => h.close());

// Through the gateway as src/app.ts builds it (auth, rate limit, problem+json).
const ask = (body: unknown, headers: Record<string, string> = {}) =>
  h.app.request('/v1/uploads', {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.alpha}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function issue(contentType: string, size: number): Promise<Upload> {
  const res = await ask({ content_type: contentType, size_bytes: size });
  expect(res.status).toBe(201);
  return Upload.parse(await res.json());
}

describe('POST /v1/uploads', () => {
  it('issues a short-lived URL that signs content-type and content-length', async () => {
    const t0 = Date.now();
    const up = await issue('image/png', 1234);
    const url = new URL(up.url);
    expect(url.searchParams.get('X-Amz-Expires')).toBe(String(UPLOAD_URL_TTL_S));
    expect(url.searchParams.get('X-Amz-SignedHeaders')!.split(';')).toEqual(['content-length', 'content-type', 'host']);
    // No checksum of an empty presign-time body may be signed in (it would fail every real upload).
    expect([...url.searchParams.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);
    expect(up.headers).toEqual({ 'content-type': 'image/png', 'content-length': '1234' });
    expect(up.s3).toMatch(new RegExp(`^s3://${h.bucket}/uploads/alpha/[0-9a-f-]{36}$`));
    expect(Date.parse(up.expires_at) - t0).toBeGreaterThanOrEqual(UPLOAD_URL_TTL_S * 1000 - 1000);
    expect(Date.parse(up.expires_at) - t0).toBeLessThanOrEqual(UPLOAD_URL_TTL_S * 1000 + 5000);
  });

  it('the PUT to the presigned URL stores the image on S3 and /v1/perceive accepts its s3 reference', async () => {
    const image = await png(40, 30);
    const up = await issue('image/png', image.length);
    const put = await fetch(up.url, { method: 'PUT', headers: up.headers, body: new Uint8Array(image) });
    expect(put.status, await put.text()).toBe(200);
    const key = up.s3.slice(`s3://${h.bucket}/`.length);
    expect(await h.store.head(key)).toEqual({ size: image.length, contentType: 'image/png' });
    expect(await h.store.get(key)).toEqual(image);

    const res = await h.post({ image: { s3: up.s3 }, tasks: WORDS });
    expect(res.status).toBe(202);
    const job = (await res.json()) as { id: string };
    const stored = await h.queue.getJob(job.id);
    expect(stored).toBeTruthy();
    const record = await h.deps.jobs.get(job.id);
    expect(record?.status).toBe('queued');
  });

  it('the signature covers size and type: another size or type is a different signature', async () => {
    const up = await issue('image/jpeg', 5000);
    const url = new URL(up.url);
    const signed = url.searchParams.get('X-Amz-Signature');
    const amzDate = url.searchParams.get('X-Amz-Date')!;
    const signingDate = new Date(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
    const s3 = new S3Client({ region: h.config.storage.driver === 's3' ? h.config.storage.region : 'us-east-1', endpoint: process.env.TEST_S3_ENDPOINT, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const key = decodeURIComponent(url.pathname.split('/').slice(2).join('/'));
    const resign = async (contentType: string, size: number) =>
      new URL(await getSignedUrl(s3, new PutObjectCommand({ Bucket: h.bucket, Key: key, ContentType: contentType, ContentLength: size }), {
        expiresIn: UPLOAD_URL_TTL_S, signingDate, signableHeaders: new Set(['content-type', 'content-length']),
      })).searchParams.get('X-Amz-Signature');
    expect(await resign('image/jpeg', 5000)).toBe(signed);
    expect(await resign('image/jpeg', 5001)).not.toBe(signed);
    expect(await resign('image/png', 5000)).not.toBe(signed);
  });

  it('refuses sizes over the image limit, unsupported types, unknown fields, other media types and missing keys', async () => {
    const tooBig = await problemOf(await ask({ content_type: 'image/png', size_bytes: h.config.limits.maxImageBytes + 1 }));
    expect(tooBig.status).toBe(422);
    expect(tooBig.errors?.[0]?.pointer).toBe('/size_bytes');

    const svg = await problemOf(await ask({ content_type: 'image/svg+xml', size_bytes: 10 }));
    expect(svg.status).toBe(422);
    expect(svg.errors?.map((e) => e.pointer)).toEqual(['/content_type']);

    const extra = await problemOf(await ask({ content_type: 'image/png', size_bytes: 10, key: 'mine' }));
    expect(extra.errors?.map((e) => e.pointer)).toEqual(['/key']);

    const zero = await problemOf(await ask({ content_type: 'image/png', size_bytes: 0 }));
    expect(zero.errors?.map((e) => e.pointer)).toEqual(['/size_bytes']);

    expect((await problemOf(await ask('{"content_type":', {}))).status).toBe(400);
    // the request body is capped: a padded one is refused before it is buffered whole
    const padded = `{"content_type":"image/png","size_bytes":10,"pad":"${'x'.repeat(64 * 1024)}"}`;
    expect((await problemOf(await ask(padded))).status).toBe(413);
    expect((await ask('x', { 'content-type': 'text/plain' })).status).toBe(415);
    const anon = await h.app.request('/v1/uploads', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(anon.status).toBe(401);
  });

  it('answers 501 when storage is the local filesystem (nothing to presign)', async () => {
    const fsApp = new Hono<AppEnv>();
    fsApp.onError(onError);
    fsApp.use('*', requestId(h.deps.log), auth(h.config.apiKeys));
    fsApp.route('/v1/uploads', uploadRoutes({ config: { ...h.config, storage: { driver: 'fs', dir: '/nonexistent', bucket: 'local' } } }));
    const res = await fsApp.request('/v1/uploads', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.alpha}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content_type: 'image/png', size_bytes: 10 }),
    });
    expect((await problemOf(res)).status).toBe(501);
  });
});

// Every rejection is application/problem+json with the right status and a pointer to the field, and
// nothing rejected reaches the queue or storage.
import { crc32 } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertMatchesSchema } from './openapi-schemas.js';
import { openHarness, png, problemOf, WORDS, type Harness } from './harness.js';
import { startImageServer, type ImageServer } from './image-server.js';

let h: Harness; // allowlists 127.0.0.1 (so the local image server is reachable over http)
let strict: Harness; // no allowlist: the SSRF guard's defaults
let server: ImageServer;
let image: Buffer;

beforeAll(async () => {
  h = await openHarness({ URL_ALLOWLIST: '127.0.0.1', MAX_TASKS: '3', MAX_PHRASES: '5' });
  strict = await openHarness();
  image = await png(32, 32);
  server = await startImageServer(image, h.config.limits.maxImageBytes);
});
afterAll(async () => {
  await server.close();
  await Promise.all([h.close(), strict.close()]);
});

let queuedBefore = 0;
async function queued(x: Harness): Promise<number> {
  return (await x.queue.getJobCounts('waiting')).waiting ?? 0;
}
afterEach(async () => {
  // Rejections never enqueue: the waiting count is what the accepted requests in this file left.
  queuedBefore = await queued(h);
});

async function expectProblem(res: Response, status: number, type: string, pointer?: string): Promise<void> {
  const body = await problemOf(res);
  assertMatchesSchema('Problem', body);
  expect(res.status, JSON.stringify(body)).toBe(status);
  expect(body.status).toBe(status);
  expect(body.type).toBe(`/problems/${type}`);
  if (pointer) expect(body.errors?.map((e) => e.pointer)).toContain(pointer);
  expect(await queued(h)).toBe(queuedBefore);
}

/** A syntactically real PNG: signature, IHDR claiming width x height, an empty IDAT, IEND. */
function pngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.alloc(0)), chunk('IEND', Buffer.alloc(0))]);
}

const b64 = (b: Buffer) => ({ image: { base64: b.toString('base64') }, tasks: WORDS });

describe('request format', () => {
  it('415 for a content type other than JSON or multipart', async () => {
    const res = await h.post('tasks=1', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await expectProblem(res, 415, 'unsupported-media-type');
    expect(res.headers.get('accept-post')).toContain('application/json');
  });

  it('400 for malformed JSON', async () => {
    await expectProblem(await h.post('{"image":'), 400, 'malformed-json');
  });

  it('413 when the body is larger than the request limit', async () => {
    const huge = 'A'.repeat(h.config.limits.maxImageBytes * 2 + 5 * 1024 * 1024);
    await expectProblem(await h.post(`{"image":{"base64":"${huge}"},"tasks":[]}`), 413, 'request-too-large');
  });

  it('413 when a base64 or uploaded image is larger than the image limit', async () => {
    const big = Buffer.alloc(h.config.limits.maxImageBytes + 10, 7);
    await expectProblem(await h.post(b64(big)), 413, 'image-too-large', '/image/base64');
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(big)]), 'big.png');
    form.set('request', JSON.stringify({ tasks: WORDS }));
    await expectProblem(await h.post(form), 413, 'image-too-large', '/image');
  });

  it('422 with one pointer per unknown field, in JSON and in the multipart request part', async () => {
    const res = await h.post({ ...b64(image), colour: 'red', tasks: [{ type: 'words', phrases: ['a'], extra: 1 }] });
    const body = await problemOf(res);
    expect(res.status).toBe(422);
    expect(body.errors?.map((e) => e.pointer).sort()).toEqual(['/colour', '/tasks/0/extra']);
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(image)]), 'a.png');
    form.set('request', JSON.stringify({ tasks: WORDS, nope: true }));
    await expectProblem(await h.post(form), 422, 'invalid-request', '/request/nope');
    form.set('other', 'x');
    await expectProblem(await h.post(form), 422, 'invalid-request', '/other');
  });

  it('422 unless exactly one image source is given', async () => {
    await expectProblem(await h.post({ tasks: WORDS }), 422, 'invalid-request', '/image');
    await expectProblem(await h.post({ image: {}, tasks: WORDS }), 422, 'invalid-request', '/image');
    await expectProblem(await h.post({ image: { base64: 'AAAA', url: 'https://example.com/a.png' }, tasks: WORDS }), 422, 'invalid-request', '/image');
  });

  it('422 for values out of range, with pointers', async () => {
    const res = await h.post({ ...b64(image), tasks: [{ type: 'words', phrases: ['dog', 'Dog'], score_threshold: 2, top_k: 0 }] });
    const body = await problemOf(res);
    expect(res.status).toBe(422);
    expect(body.errors?.map((e) => e.pointer).sort()).toEqual(['/tasks/0/phrases', '/tasks/0/score_threshold', '/tasks/0/top_k']);
    await expectProblem(await h.post({ ...b64(image), tasks: [{ type: 'sentence', sentence: 'x'.repeat(513) }] }), 422, 'invalid-request', '/tasks/0/sentence');
    await expectProblem(await h.post({ ...b64(image), tasks: [{ type: 'words', phrases: ['y'.repeat(65)] }] }), 422, 'invalid-request', '/tasks/0/phrases/0');
  });

  it('422 for more tasks or phrases than the configured caps', async () => {
    const t = { type: 'words', phrases: ['a'] };
    await expectProblem(await h.post({ ...b64(image), tasks: [t, t, t, t] }), 422, 'invalid-request', '/tasks');
    await expectProblem(await h.post({ ...b64(image), tasks: [{ type: 'words', phrases: ['a', 'b', 'c', 'd', 'e', 'f'] }] }), 422, 'invalid-request', '/tasks/0/phrases');
  });

  it('422 for a webhook that is not https or points at an internal address', async () => {
    await expectProblem(await h.post({ ...b64(image), webhook: { url: 'http://hooks.example.com/' } }), 422, 'invalid-request', '/webhook/url');
    await expectProblem(await h.post({ ...b64(image), webhook: { url: 'https://10.1.2.3/hook' } }), 422, 'invalid-request', '/webhook/url');
  });

  it('422 for a refused webhook URL: the top-level detail is the pointer\'s, and the address class comes before the scheme', async () => {
    const cases: [Harness, string, string][] = [
      [h, 'http://hooks.example.com/', 'webhook URLs must use https (http to hooks.example.com is not allowed)'],
      [h, 'https://10.1.2.3/hook', 'webhook URL refused: 10.1.2.3 is a private address, which is not allowed'],
      [strict, 'http://169.254.169.254/latest/meta-data/', 'webhook URL refused: 169.254.169.254 is a link-local address, which is not allowed'],
      [strict, 'http://[::1]:8080/hook', 'webhook URL refused: ::1 is a loopback address, which is not allowed'],
      [strict, 'https://localhost/hook', 'webhook URL refused: localhost is a loopback address, which is not allowed'],
      [strict, 'ftp://hooks.example.com/', 'Invalid URL'], // the schema refuses it (zod's own text)
    ];
    for (const [x, url, detail] of cases) {
      const res = await x.post({ ...b64(image), webhook: { url } });
      const body = await problemOf(res);
      expect(res.status, url).toBe(422);
      expect(body.type, url).toBe('/problems/invalid-request');
      expect(body.errors, url).toEqual([{ pointer: '/webhook/url', detail }]);
      expect(body.detail, url).toBe(`/webhook/url: ${detail}`);
    }
    expect(await queued(h)).toBe(queuedBefore);
  });

  it('400 for a malformed Idempotency-Key', async () => {
    await expectProblem(await h.post(b64(image), { headers: { 'idempotency-key': 'a b' } }), 400, 'invalid-idempotency-key');
  });
});

describe('task text', () => {
  const words = (...phrases: unknown[]) => ({ ...b64(image), tasks: [{ type: 'words', phrases }] });
  const sentence = (text: string) => ({ ...b64(image), tasks: [{ type: 'sentence', sentence: text }] });
  async function textProblem(body: unknown, pointer: string, detail: string): Promise<void> {
    const res = await h.post(body);
    const p = await problemOf(res);
    assertMatchesSchema('Problem', p);
    expect(res.status, JSON.stringify(p)).toBe(422);
    expect(p.type).toBe('/problems/invalid-request');
    expect(p.errors).toEqual([{ pointer, detail }]);
    expect(p.detail).toBe(`${pointer}: ${detail}`);
    expect(await queued(h)).toBe(queuedBefore);
  }

  it('422 "blank after trimming" for phrases and sentences of whitespace or zero-width characters', async () => {
    await textProblem(words('dog', '   '), '/tasks/0/phrases/1', 'blank after trimming');
    await textProblem(words('dog', '\u200B\u200C\u200D'), '/tasks/0/phrases/1', 'blank after trimming');
    await textProblem(words('dog', { text: ' \u2060\uFEFF ' }), '/tasks/0/phrases/1/text', 'blank after trimming');
    await textProblem(sentence('\u200B \u200B\t'), '/tasks/0/sentence', 'blank after trimming');
  });

  it('422 for control characters (NUL included) and lone surrogates, naming the character', async () => {
    await textProblem(words('dog', 'a\u0000b'), '/tasks/0/phrases/1', 'must not contain control characters (found U+0000)');
    await textProblem(words('dog', { text: 'cat\u007F' }), '/tasks/0/phrases/1/text', 'must not contain control characters (found U+007F)');
    await textProblem(sentence('a dog\u001B[31m in red'), '/tasks/0/sentence', 'must not contain control characters (found U+001B)');
    // JSON.stringify writes a lone surrogate as the escape "\ud800", which JSON.parse turns back into one.
    await textProblem(words('dog', 'x\uD800'), '/tasks/0/phrases/1', 'must not contain lone surrogates (found U+D800)');
    await textProblem(sentence('\uDC00 trailing half'), '/tasks/0/sentence', 'must not contain lone surrogates (found U+DC00)');
  });

  it('counts the length limit after NFC and trimming, and finds duplicates after NFC', async () => {
    const long = 'e'.repeat(64);
    await textProblem(words('dog', `${long}x`), '/tasks/0/phrases/1', 'Too big: expected string to have <=64 characters');
    const res = await h.post(words('dog', 'cafe\u0301', 'caf\u00e9'));
    const p = await problemOf(res);
    expect(res.status).toBe(422);
    expect(p.errors).toEqual([{ pointer: '/tasks/0/phrases', detail: 'phrases must be unique' }]);
  });
});

describe('image bytes', () => {
  it('422 for bytes that are no supported image', async () => {
    await expectProblem(await h.post(b64(Buffer.from('just some text, not an image'))), 422, 'unsupported-image-type', '/image/base64');
    const bmp = Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]);
    await expectProblem(await h.post(b64(bmp)), 422, 'unsupported-image-type', '/image/base64');
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    await expectProblem(await h.post(b64(svg)), 422, 'unsupported-image-type', '/image/base64');
  });

  it('422 for a PNG signature followed by garbage, and for a truncated JPEG', async () => {
    await expectProblem(await h.post(b64(Buffer.concat([image.subarray(0, 8), Buffer.alloc(200, 0x41)]))), 422, 'image-undecodable', '/image/base64');
    const sharp = (await import('sharp')).default;
    const jpeg = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#123' } }).jpeg().toBuffer();
    await expectProblem(await h.post(b64(jpeg.subarray(0, Math.floor(jpeg.length / 2)))), 422, 'image-undecodable', '/image/base64');
  });

  it('422 for more pixels than the cap, read from the header without decoding (50000x50000 PNG)', async () => {
    const bomb = pngHeader(50_000, 50_000);
    expect(bomb.length).toBeLessThan(100);
    const res = await h.post(b64(bomb));
    const body = await problemOf(res);
    expect(res.status).toBe(422);
    expect(body.type).toBe('/problems/image-too-many-pixels');
    expect(body.detail).toContain('50000x50000');
  });
});

describe('image URLs', () => {
  it('422 when the URL answers an error, cannot be reached, is too large or too slow', async () => {
    await expectProblem(await h.post({ image: { url: server.url('/missing') }, tasks: WORDS }), 422, 'url-unreachable', '/image/url');
    await expectProblem(await h.post({ image: { url: 'http://127.0.0.1:1/none.png' }, tasks: WORDS }), 422, 'url-unreachable', '/image/url');
    await expectProblem(await h.post({ image: { url: server.url('/big-declared') }, tasks: WORDS }), 422, 'image-too-large', '/image/url');
    await expectProblem(await h.post({ image: { url: server.url('/big-streamed') }, tasks: WORDS }), 422, 'image-too-large', '/image/url');
    const t0 = Date.now();
    // A timeout is a network failure like the others: the same answer (test/gateway/url-errors.test.ts).
    await expectProblem(await h.post({ image: { url: server.url('/slow') }, tasks: WORDS }), 422, 'url-unreachable', '/image/url');
    expect(Date.now() - t0).toBeLessThan(4_000);
  });

  it('refuses a redirect to the metadata address even from an allowlisted host', async () => {
    await expectProblem(await h.post({ image: { url: server.url('/to-metadata') }, tasks: WORDS }), 422, 'url-refused', '/image/url');
  });

  it('without an allowlist: refuses http, and loopback, private, link-local/metadata and IPv6 loopback hosts', async () => {
    for (const url of [
      server.url('/image.png'),
      'https://127.0.0.1/a.png',
      'https://10.0.0.8/a.png',
      'https://169.254.169.254/latest/meta-data/',
      'https://[::1]/a.png',
      'https://[::ffff:127.0.0.1]/a.png',
      'https://localhost/a.png',
    ]) {
      const res = await strict.post({ image: { url }, tasks: WORDS });
      const body = await problemOf(res);
      expect(res.status, url).toBe(422);
      expect(body.type, url).toBe('/problems/url-refused');
      expect(body.errors?.[0]?.pointer).toBe('/image/url');
    }
    expect(server.hits.filter((p) => p === '/image.png')).toHaveLength(0);
  });
});

describe('s3 references', () => {
  it('422 for another bucket, the reserved jobs/ prefix, a missing object, an oversized object', async () => {
    await expectProblem(await h.post({ image: { s3: 's3://someone-elses/x.png' }, tasks: WORDS }), 422, 's3-ref-refused', '/image/s3');
    await expectProblem(await h.post({ image: { s3: `s3://${h.bucket}/jobs/abc/input` }, tasks: WORDS }), 422, 's3-ref-refused', '/image/s3');
    await expectProblem(await h.post({ image: { s3: `s3://${h.bucket}/nope/missing.png` }, tasks: WORDS }), 422, 's3-object-missing', '/image/s3');
    await h.store.put('big/object.png', Buffer.alloc(h.config.limits.maxImageBytes + 1), 'image/png');
    await expectProblem(await h.post({ image: { s3: `s3://${h.bucket}/big/object.png` }, tasks: WORDS }), 422, 'image-too-large', '/image/s3');
    await h.store.put('bad/object.png', Buffer.from('not an image'), 'image/png');
    await expectProblem(await h.post({ image: { s3: `s3://${h.bucket}/bad/object.png` }, tasks: WORDS }), 422, 'unsupported-image-type', '/image/s3');
  });
});

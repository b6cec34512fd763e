// Each way of sending an image is accepted, its type and size come from the bytes, the bytes land in
// storage under the job's key, and the queued payload is a valid contracts/job.ts JobPayload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobPayload } from '../../contracts/job.js';
import { inputKey } from '../../lib/storage/index.js';
import { openHarness, png, WORDS, type Harness } from './harness.js';
import { startImageServer, type ImageServer } from './image-server.js';

let h: Harness;
let server: ImageServer;
let image: Buffer;

beforeAll(async () => {
  h = await openHarness({ URL_ALLOWLIST: '127.0.0.1' });
  image = await png(64, 48);
  server = await startImageServer(image, h.config.limits.maxImageBytes);
});
afterAll(async () => {
  await server.close();
  await h.close();
});

async function accepted(res: Response): Promise<{ id: string; status: string; input: { image: Record<string, unknown> } }> {
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${await res.text()}`);
  const job = (await res.json()) as { id: string; status: string; input: { image: Record<string, unknown> } };
  expect(res.headers.get('location')).toBe(`/v1/jobs/${job.id}`);
  expect(job.status).toBe('queued');
  return job;
}

async function queuedPayload(id: string): Promise<JobPayload> {
  const entry = await h.queue.getJob(id);
  expect(entry, `queue entry for ${id}`).toBeTruthy();
  return JobPayload.parse(entry!.data);
}

describe('image intake', () => {
  it('accepts a multipart upload and stores the bytes under jobs/{id}/input', async () => {
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(image)]), 'whatever.jpg');
    form.set('request', JSON.stringify({ tasks: [{ type: 'sentence', sentence: 'the red square' }], caption: false }));
    const job = await accepted(await h.post(form));
    expect(job.input.image).toEqual({ content_type: 'image/png', width: 64, height: 48, bytes: image.length });
    expect(await h.store.get(inputKey(job.id))).toEqual(image);
    const payload = await queuedPayload(job.id);
    expect(payload.image.storage_key).toBe(inputKey(job.id));
    expect(payload.caption).toBe(false);
    expect(payload.tasks[0]).toMatchObject({ type: 'sentence', sentence: 'the red square', mode: 'single' });
  });

  it('accepts base64 (with a data: prefix) and fills task defaults', async () => {
    const job = await accepted(await h.post({ image: { base64: `data:image/png;base64,${image.toString('base64')}` }, tasks: WORDS }));
    expect(await h.store.get(inputKey(job.id))).toEqual(image);
    const payload = await queuedPayload(job.id);
    expect(payload.tasks[0]).toEqual({
      type: 'words',
      phrases: [{ text: 'dog', stuff: false }, { text: 'frisbee', stuff: false }],
      mode: 'instance',
      outputs: ['boxes', 'masks'],
      score_threshold: 0.3,
      top_k: 100,
    });
    expect(payload.caption).toBe(true);
  });

  it('fetches an image URL (http only because the host is allowlisted) and follows a checked redirect', async () => {
    for (const path of ['/image.png', '/to-image']) {
      const job = await accepted(await h.post({ image: { url: server.url(path) }, tasks: WORDS }));
      expect(await h.store.get(inputKey(job.id))).toEqual(image);
      expect(job.input.image.width).toBe(64);
    }
  });

  it('uses an s3:// reference in place, without copying it', async () => {
    await h.store.put('images/cat.png', image, 'image/png');
    const job = await accepted(await h.post({ image: { s3: `s3://${h.bucket}/images/cat.png` }, tasks: WORDS }));
    const payload = await queuedPayload(job.id);
    expect(payload.image).toEqual({ storage_key: 'images/cat.png', content_type: 'image/png', width: 64, height: 48, bytes: image.length });
    expect(await h.store.head(inputKey(job.id))).toBeNull();
  });

  it('takes the type from the bytes: a JPEG sent as "image.png" is image/jpeg; WebP and GIF are accepted', async () => {
    const sharp = (await import('sharp')).default;
    const raw = sharp({ create: { width: 20, height: 10, channels: 3, background: '#00f' } });
    for (const [fmt, type] of [['jpeg', 'image/jpeg'], ['webp', 'image/webp'], ['gif', 'image/gif'], ['tiff', 'image/tiff']] as const) {
      const bytes = await raw.clone().toFormat(fmt).toBuffer();
      const form = new FormData();
      form.set('image', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'image.png');
      form.set('request', JSON.stringify({ tasks: WORDS }));
      const job = await accepted(await h.post(form));
      expect(job.input.image).toMatchObject({ content_type: type, width: 20, height: 10 });
    }
  });

  it('queues phrase and sentence text NFC-normalised and trimmed of whitespace and zero-width characters', async () => {
    const nfd64 = 'e\u0301'.repeat(64); // 128 UTF-16 units as sent, 64 after NFC: within the 64-character limit
    const res = await h.post({
      image: { base64: image.toString('base64') },
      tasks: [
        { type: 'words', phrases: ['\u200B dog\u200D ', { text: '\uFEFFcafe\u0301\t' }, nfd64, 'a\u200Db'] },
        { type: 'sentence', sentence: '  the dog\u2060 ' },
      ],
    });
    const job = await accepted(res);
    const payload = await queuedPayload(job.id);
    expect(payload.tasks[0]).toMatchObject({
      phrases: [{ text: 'dog' }, { text: 'caf\u00e9' }, { text: '\u00e9'.repeat(64) }, { text: 'a\u200Db' }],
    });
    expect(payload.tasks[1]).toMatchObject({ sentence: 'the dog' });
  });

  it('carries webhook, metadata, deadline and the request id onto the job', async () => {
    const res = await h.post(
      { image: { base64: image.toString('base64') }, tasks: WORDS, webhook: { url: 'https://hooks.example.com/x' }, metadata: { order: '42' }, deadline_s: 30 },
      { headers: { 'x-request-id': 'req-abc-1' } },
    );
    const job = await accepted(res);
    const payload = await queuedPayload(job.id);
    expect(payload.request_id).toBe('req-abc-1');
    expect(res.headers.get('x-request-id')).toBe('req-abc-1');
    expect(payload.metadata).toEqual({ order: '42' });
    expect(payload.webhook).toEqual({ url: 'https://hooks.example.com/x', events: ['job.started', 'job.succeeded', 'job.failed', 'job.canceled', 'job.expired'] });
    const deadline = Date.parse(payload.deadline_at) - Date.parse(payload.created_at);
    expect(deadline).toBe(30_000);
  });
});

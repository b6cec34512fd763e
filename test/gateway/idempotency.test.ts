// Idempotency-Key: same key + same body → the same job; different body → 422; concurrent duplicates
// create exactly one job and all get it.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, openHarness, png, problemOf, WORDS, type Harness } from './harness.js';

let h: Harness;
let image: string;

beforeAll(async () => {
  h = await openHarness();
  image = (await png()).toString('base64');
});
afterAll(() => h.close());

const waitingIds = async (): Promise<string[]> => (await h.queue.getWaiting()).map((j) => j.id!);

describe('Idempotency-Key', () => {
  it('replays the same job for the same key and body, without a second queue entry', async () => {
    const before = (await waitingIds()).length;
    const headers = { 'idempotency-key': 'order-1' };
    const first = await h.post({ image: { base64: image }, tasks: WORDS }, { headers });
    const second = await h.post({ tasks: WORDS, image: { base64: image } }, { headers }); // same body, other key order
    expect([first.status, second.status]).toEqual([202, 202]);
    const [a, b] = (await Promise.all([first.json(), second.json()])) as { id: string }[];
    expect(b!.id).toBe(a!.id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect((await waitingIds()).length).toBe(before + 1);
  });

  it('422 for the same key with a different body', async () => {
    const headers = { 'idempotency-key': 'order-2' };
    expect((await h.post({ image: { base64: image }, tasks: WORDS }, { headers })).status).toBe(202);
    const res = await h.post({ image: { base64: image }, tasks: [{ type: 'sentence', sentence: 'the dog' }] }, { headers });
    expect(res.status).toBe(422);
    expect((await problemOf(res)).type).toBe('/problems/idempotency-key-reused');
  });

  it('keys are per API key: the same Idempotency-Key from another key is a different request', async () => {
    const headers = { 'idempotency-key': 'shared-name' };
    const a = (await (await h.post({ image: { base64: image }, tasks: WORDS }, { headers })).json()) as { id: string };
    const b = (await (await h.post({ image: { base64: image }, tasks: WORDS }, { headers, key: KEYS.beta })).json()) as { id: string };
    expect(a.id).not.toBe(b.id);
  });

  it('concurrent duplicates: one job, and every one of them answers 202 with it (creation is atomic, so never 409)', async () => {
    const before = new Set(await waitingIds());
    const headers = { 'idempotency-key': 'burst-1' };
    const results = await Promise.all(Array.from({ length: 6 }, () => h.post({ image: { base64: image }, tasks: WORDS }, { headers })));
    const created = (await waitingIds()).filter((id) => !before.has(id));
    expect(created).toHaveLength(1);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(202));
    for (const r of results) expect(((await r.json()) as { id: string }).id).toBe(created[0]);
    expect(results.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
  });

  it('a replayed or refused upload leaves no stored input behind', async () => {
    const headers = { 'idempotency-key': 'upload-once' };
    const inputs = async (): Promise<number> =>
      ((await h.store.client.send(new ListObjectsV2Command({ Bucket: h.bucket, Prefix: 'jobs/' }))).Contents ?? []).filter((o) => o.Key!.endsWith('/input')).length;
    const first = await h.post({ image: { base64: image }, tasks: WORDS }, { headers });
    expect(first.status).toBe(202);
    const stored = await inputs();
    expect((await h.post({ image: { base64: image }, tasks: WORDS }, { headers })).status).toBe(202);
    expect((await h.post({ image: { base64: image }, tasks: [{ type: 'sentence', sentence: 'the dog' }] }, { headers })).status).toBe(422);
    expect(await inputs()).toBe(stored);
  });

  it('a request refused before admission does not take the key: its fixed retry creates a new job', async () => {
    const headers = { 'idempotency-key': 'retry-after-fix' };
    const bad = await h.post({ image: { base64: Buffer.from('not an image').toString('base64') }, tasks: WORDS }, { headers });
    expect(bad.status).toBe(422);
    const again = await h.post({ image: { base64: Buffer.from('not an image').toString('base64') }, tasks: WORDS }, { headers });
    expect(again.status).toBe(422);
    expect((await problemOf(again)).type).toBe('/problems/unsupported-image-type');
    const before = await waitingIds();
    const fixed = await h.post({ image: { base64: image }, tasks: WORDS }, { headers });
    expect(fixed.status).toBe(202);
    expect(fixed.headers.get('idempotent-replayed')).toBeNull();
    const { id } = (await fixed.json()) as { id: string };
    expect(before).not.toContain(id);
    expect(await waitingIds()).toContain(id);
    const replay = await h.post({ image: { base64: image }, tasks: WORDS }, { headers });
    expect(((await replay.json()) as { id: string }).id).toBe(id);
  });

  it('a request refused by the quota, after its key was looked up, does not take the key either', async () => {
    const body = { image: { base64: image }, tasks: WORDS };
    const held = [];
    for (let i = 0; i < 2; i++) held.push(((await (await h.post(body, { key: KEYS.few })).json()) as { id: string }).id);
    const headers = { 'idempotency-key': 'refused-by-quota' };
    const refused = await h.post(body, { key: KEYS.few, headers });
    expect(refused.status).toBe(429);
    expect((await problemOf(refused)).type).toBe('/problems/job-quota-exceeded');
    await h.app.request(`/v1/jobs/${held[0]}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.few}` } });
    const retry = await h.post(body, { key: KEYS.few, headers });
    expect(retry.status).toBe(202);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(held).not.toContain(((await retry.json()) as { id: string }).id);
  });
});

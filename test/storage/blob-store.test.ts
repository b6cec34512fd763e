// Both BlobStore drivers behave the same: put/get/head/delete, missing objects are null, writes are
// idempotent overwrites, keys that could escape the root are refused. S3 runs against the real S3 server.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createBlobStore, FsBlobStore, inputKey, overlayKey, resultKey, S3BlobStore, type BlobStore } from '../../lib/storage/index.js';

process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

async function s3Store(): Promise<S3BlobStore> {
  const config = loadConfig({
    STORAGE_DRIVER: 's3',
    S3_BUCKET: `st-${randomBytes(5).toString('hex')}`,
    S3_ENDPOINT: process.env.TEST_S3_ENDPOINT,
    S3_FORCE_PATH_STYLE: 'true',
    S3_REGION: 'eu-west-1',
  });
  const store = createBlobStore(config.storage);
  expect(store).toBeInstanceOf(S3BlobStore);
  await (store as S3BlobStore).ensureBucket();
  await (store as S3BlobStore).ensureBucket(); // idempotent
  return store as S3BlobStore;
}

const fsRoot = (): string => mkdtempSync(path.join(os.tmpdir(), 'blobs-'));

const drivers: [string, () => Promise<BlobStore>][] = [
  ['fs', async () => new FsBlobStore(fsRoot())],
  ['s3', s3Store],
];

describe.each(drivers)('%s BlobStore', (_name, open) => {
  it('round-trips bytes and content type; missing objects are null', async () => {
    const store = await open();
    const body = randomBytes(1000);
    expect(await store.get('jobs/a1/input')).toBeNull();
    expect(await store.head('jobs/a1/input')).toBeNull();
    await store.put('jobs/a1/input', body, 'image/png');
    expect(await store.get('jobs/a1/input')).toEqual(body);
    expect(await store.head('jobs/a1/input')).toEqual({ size: 1000, contentType: 'image/png' });
  });

  it('overwrites idempotently and deletes (deleting twice is fine)', async () => {
    const store = await open();
    await store.put('jobs/a2/result.json', '{"v":1}', 'application/json');
    await store.put('jobs/a2/result.json', '{"v":1}', 'application/json');
    await store.put('jobs/a2/result.json', Buffer.from('{"v":2}'), 'application/json');
    expect((await store.get('jobs/a2/result.json'))!.toString()).toBe('{"v":2}');
    await store.delete('jobs/a2/result.json');
    await store.delete('jobs/a2/result.json');
    expect(await store.get('jobs/a2/result.json')).toBeNull();
  });

  it('refuses keys that could escape the root or collide with driver metadata', async () => {
    const store = await open();
    for (const key of ['', '/abs', '../up', 'a/../../b', 'a//b', '.meta/x', 'a/.hidden', 'back\\slash']) {
      await expect(store.put(key, 'x', 'text/plain'), key).rejects.toThrow(/invalid storage key/);
    }
  });
});

describe('fs driver', () => {
  it('writes atomically: concurrent writers leave one complete body and no temp files', async () => {
    const root = fsRoot();
    const store = new FsBlobStore(root);
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024, i));
    await Promise.all(bodies.map((b) => store.put('jobs/c/input', b, 'image/png')));
    const got = await store.get('jobs/c/input');
    expect(bodies.some((b) => b.equals(got!))).toBe(true);
    expect(readdirSync(path.join(root, 'jobs/c'))).toEqual(['input']);
  });
});

describe('keys', () => {
  it('derives per-job keys and refuses ids that are not plain tokens', () => {
    expect([inputKey('j-1'), resultKey('j-1'), overlayKey('j-1')]).toEqual(['jobs/j-1/input', 'jobs/j-1/result.json', 'jobs/j-1/overlay.png']);
    for (const bad of ['', 'a/b', '..', 'x'.repeat(65)]) expect(() => inputKey(bad), bad).toThrow(/invalid job id/);
  });
});

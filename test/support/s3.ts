// A BlobStore on the test S3-protocol server (moto, started by test/setup/global.ts), one bucket per call.
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { S3BlobStore } from '../../lib/storage/index.js';

/** Environment for processes that use the test S3 server (the SDK needs some credentials; moto takes any). */
export function s3Env(bucket: string): Record<string, string> {
  const endpoint = process.env.TEST_S3_ENDPOINT;
  if (!endpoint) throw new Error('TEST_S3_ENDPOINT is not set: run the tests through vitest (test/setup/global.ts)');
  return {
    STORAGE_DRIVER: 's3',
    S3_BUCKET: bucket,
    S3_ENDPOINT: endpoint,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
  };
}

export async function openTestBucket(bucket = `lifecycle-${randomBytes(4).toString('hex')}`): Promise<S3BlobStore> {
  const env = s3Env(bucket);
  process.env.AWS_ACCESS_KEY_ID = env.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = env.AWS_SECRET_ACCESS_KEY;
  const store = new S3BlobStore({ bucket, region: env.S3_REGION!, endpoint: env.S3_ENDPOINT, forcePathStyle: true });
  await store.ensureBucket();
  return store;
}

/** A small real PNG; `seed` changes its pixels (and so the test pipeline's answer). */
export function testImage(seed = 0, width = 64, height = 48): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: seed % 256, g: 80, b: 160 } } }).png().toBuffer();
}

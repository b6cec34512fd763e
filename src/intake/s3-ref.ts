// `s3://bucket/key` image references. Only the service's own bucket is readable, keys under jobs/ (other
// jobs' inputs and results) are refused, and keys under uploads/{key id}/ (POST /v1/uploads) are readable
// only by that API key. A reference is probed once (head, get, probeImage) and
// the probe is cached in Redis for PROBE_TTL_S, so repeated submits of the same object cost one Redis GET
// instead of a storage read and a decode. If the object is replaced within that time the worker still
// decodes the real bytes and fails the job with a problem if they are bad.
import type { Redis } from 'ioredis';
import { assertValidKey, JOBS_PREFIX, UPLOADS_PREFIX, type BlobStore } from '../../lib/storage/index.js';
import { invalidField } from '../middleware/problem.js';
import { S3_REF } from '../schemas/perceive.js';
import { probeImage, type ImageInfo } from './probe.js';

const PROBE_TTL_S = 600;
const POINTER = '/image/s3';

export function parseS3Ref(ref: string, bucket: string, keyId: string): string {
  const m = S3_REF.exec(ref);
  if (!m) throw invalidField(POINTER, 'must be s3://bucket/key');
  if (m[1] !== bucket) throw invalidField(POINTER, `bucket "${m[1]}" is not readable by this service (use "${bucket}")`, 's3-ref-refused');
  const key = m[2]!;
  if (key.startsWith(JOBS_PREFIX)) throw invalidField(POINTER, `keys under ${JOBS_PREFIX} are reserved`, 's3-ref-refused');
  if (key.startsWith(UPLOADS_PREFIX) && !key.startsWith(`${UPLOADS_PREFIX}${keyId}/`)) {
    throw invalidField(POINTER, 'this upload belongs to another API key', 's3-ref-refused');
  }
  try {
    assertValidKey(key);
  } catch {
    throw invalidField(POINTER, `"${key}" is not a valid object key`);
  }
  return key;
}

export interface S3RefDeps {
  redis: Redis;
  store: BlobStore;
  cachePrefix: string;
  maxImageBytes: number;
  maxPixels: number;
}

export async function probeS3Ref(key: string, d: S3RefDeps): Promise<ImageInfo> {
  const cacheKey = `${d.cachePrefix}:probe:${key}`;
  const cached = await d.redis.get(cacheKey);
  if (cached) return JSON.parse(cached) as ImageInfo;
  const head = await d.store.head(key);
  if (!head) throw invalidField(POINTER, `object "${key}" does not exist`, 's3-object-missing');
  if (head.size > d.maxImageBytes) {
    throw invalidField(POINTER, `object is ${head.size} bytes, more than the ${d.maxImageBytes} allowed`, 'image-too-large');
  }
  const bytes = await d.store.get(key);
  if (!bytes) throw invalidField(POINTER, `object "${key}" does not exist`, 's3-object-missing');
  const info = await probeImage(bytes, d.maxPixels, POINTER);
  await d.redis.set(cacheKey, JSON.stringify(info), 'EX', PROBE_TTL_S);
  return info;
}

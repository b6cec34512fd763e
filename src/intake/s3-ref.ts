// `s3://bucket/key` image references. Only the service's own bucket is readable, keys under jobs/ (other
// jobs' inputs and results) are refused, and keys under uploads/{key id}/ (POST /v1/uploads) are readable
// only by that API key. A reference is probed once (head, get, probeImage) and the probe is cached in this
// process for PROBE_TTL_S, so repeated submits of the same object cost neither a storage read and a decode
// nor a Redis command. Each gateway process probes an object once per TTL. If the object is replaced within
// that time the worker still decodes the real bytes and fails the job with a problem if they are bad.
import { assertValidKey, JOBS_PREFIX, UPLOADS_PREFIX, type BlobStore } from '../../lib/storage/index.js';
import { invalidField } from '../problem.js';
import { S3_REF } from '../schemas/perceive.js';
import { probeImage, type ImageInfo } from './probe.js';

const PROBE_TTL_S = 600;
/** Objects whose probe is remembered; past this the oldest entry goes. */
const PROBE_CACHE_SIZE = 10_000;
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

/** Probes by object key, for one app (so for one bucket), oldest first: a Map iterates in insertion order. */
export class ProbeCache {
  private readonly entries = new Map<string, { info: ImageInfo; expiresAt: number }>();

  get(key: string): ImageInfo | undefined {
    const e = this.entries.get(key);
    return e && e.expiresAt > Date.now() ? e.info : undefined;
  }

  set(key: string, info: ImageInfo): void {
    this.entries.delete(key);
    if (this.entries.size >= PROBE_CACHE_SIZE) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { info, expiresAt: Date.now() + PROBE_TTL_S * 1000 });
  }
}

export interface S3RefDeps {
  store: BlobStore;
  probes: ProbeCache;
  maxImageBytes: number;
  maxPixels: number;
}

export async function probeS3Ref(key: string, d: S3RefDeps): Promise<ImageInfo> {
  const cached = d.probes.get(key);
  if (cached) return cached;
  const head = await d.store.head(key);
  if (!head) throw invalidField(POINTER, `object "${key}" does not exist`, 's3-object-missing');
  if (head.size > d.maxImageBytes) {
    throw invalidField(POINTER, `object is ${head.size} bytes, more than the ${d.maxImageBytes} allowed`, 'image-too-large');
  }
  const bytes = await d.store.get(key);
  if (!bytes) throw invalidField(POINTER, `object "${key}" does not exist`, 's3-object-missing');
  const info = await probeImage(bytes, d.maxPixels, POINTER);
  d.probes.set(key, info);
  return info;
}

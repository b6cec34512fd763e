// S3 BlobStore on @aws-sdk/client-s3. Endpoint, region and path-style come from config; credentials come
// from the SDK's default provider chain (env, shared config, web identity, instance metadata).
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { StorageUnavailableError } from '../outage.js';
import { assertValidKey, type BlobHead, type BlobStore } from './blob-store.js';

export interface S3StoreOptions {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
}

/** The object is missing. A missing bucket is not that: it is an outage (NoSuchBucket on GET; a HEAD
 *  answer has no body to tell them apart, so head() reports both as missing and ready() checks the bucket). */
function isNotFound(e: unknown): boolean {
  if (!(e instanceof S3ServiceException) || e.name === 'NoSuchBucket') return false;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata.httpStatusCode === 404;
}

function bucketGone(e: unknown, bucket: string): unknown {
  return e instanceof S3ServiceException && e.name === 'NoSuchBucket' ? new StorageUnavailableError(`bucket ${bucket} does not exist`) : e;
}

export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  readonly bucket: string;

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.client = new S3Client({ region: opts.region, endpoint: opts.endpoint, forcePathStyle: opts.forcePathStyle });
  }

  /** Creates the bucket when it does not exist (local runs and tests against an empty S3 server). */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  async put(key: string, body: Buffer | Uint8Array | string, contentType: string): Promise<void> {
    assertValidKey(key);
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType })).catch((e: unknown) => {
      throw bucketGone(e, this.bucket);
    });
  }

  async get(key: string): Promise<Buffer | null> {
    assertValidKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return null;
      throw bucketGone(e, this.bucket);
    }
  }

  async head(key: string): Promise<BlobHead | null> {
    assertValidKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: out.ContentLength ?? 0, contentType: out.ContentType ?? null };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async ready(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      if (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 404) throw new StorageUnavailableError(`bucket ${this.bucket} does not exist`);
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}

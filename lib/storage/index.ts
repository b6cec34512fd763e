// Builds the configured BlobStore.
import type { Config } from '../config.js';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs.js';
import { S3BlobStore } from './s3.js';

export { assertValidKey, type BlobHead, type BlobStore } from './blob-store.js';
export { FsBlobStore } from './fs.js';
export { S3BlobStore } from './s3.js';
export * from './keys.js';

export function createBlobStore(storage: Config['storage']): BlobStore {
  return storage.driver === 's3' ? new S3BlobStore(storage) : new FsBlobStore(storage.dir);
}

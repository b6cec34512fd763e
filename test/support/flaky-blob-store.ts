// Wraps a real BlobStore and makes its next `failures` writes throw, as a storage outage would
// (the wrapped store is the real S3 client against the test S3 server; only the failure is injected).
import type { BlobHead, BlobStore } from '../../lib/storage/index.js';

export class FlakyBlobStore implements BlobStore {
  putAttempts = 0;

  constructor(
    private readonly inner: BlobStore,
    private failures: number,
  ) {}

  async put(key: string, body: Buffer | Uint8Array | string, contentType: string): Promise<void> {
    this.putAttempts++;
    if (this.failures > 0) {
      this.failures--;
      throw Object.assign(new Error(`injected storage outage writing ${key}`), { code: 'ECONNRESET' });
    }
    await this.inner.put(key, body, contentType);
  }

  get(key: string): Promise<Buffer | null> {
    return this.inner.get(key);
  }

  head(key: string): Promise<BlobHead | null> {
    return this.inner.head(key);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  ready(): Promise<void> {
    return this.inner.ready();
  }
}

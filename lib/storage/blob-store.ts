// The storage interface every process uses. Keys are '/'-separated relative paths (see keys.ts).
// Writes are idempotent: putting the same key twice leaves one object with the last body.

export interface BlobHead {
  size: number;
  contentType: string | null;
}

export interface BlobStore {
  put(key: string, body: Buffer | Uint8Array | string, contentType: string): Promise<void>;
  /** The object's bytes, or null when it does not exist. */
  get(key: string): Promise<Buffer | null>;
  /** Size and content type, or null when the object does not exist. */
  head(key: string): Promise<BlobHead | null>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Resolves when the store can serve (the S3 bucket exists and the credentials reach it; the directory
   *  exists); throws otherwise. /readyz checks it. */
  ready(): Promise<void>;
}

/** Rejects keys that could escape a storage root or hide among driver metadata. */
export function assertValidKey(key: string): void {
  if (
    key.length === 0 ||
    key.length > 1024 ||
    key.startsWith('/') ||
    key.split('/').some((seg) => seg === '' || seg === '.' || seg === '..' || seg.startsWith('.')) ||
    /[\0\\]/.test(key)
  ) {
    throw new Error(`invalid storage key "${key}"`);
  }
}

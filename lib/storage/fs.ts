// Local-filesystem BlobStore (the local run's default). Each write goes to a temp file in the target's
// directory and is renamed over it, so readers never see a partial object. Content types live in a
// parallel tree under `.meta/` (keys cannot contain dot-segments, so they cannot collide with it).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assertValidKey, type BlobHead, type BlobStore } from './blob-store.js';

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

async function atomicWrite(file: string, body: Buffer | Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, body);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export class FsBlobStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private dataPath(key: string): string {
    assertValidKey(key);
    return path.join(this.root, key);
  }

  private metaPath(key: string): string {
    return path.join(this.root, '.meta', key);
  }

  async put(key: string, body: Buffer | Uint8Array | string, contentType: string): Promise<void> {
    const file = this.dataPath(key);
    await atomicWrite(this.metaPath(key), contentType);
    await atomicWrite(file, body);
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.dataPath(key));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async head(key: string): Promise<BlobHead | null> {
    let size: number;
    try {
      size = (await stat(this.dataPath(key))).size;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
    const contentType = await readFile(this.metaPath(key), 'utf8').catch((e) => {
      if (isNotFound(e)) return null;
      throw e;
    });
    return { size, contentType };
  }

  /** The root exists (made if missing, as the first write would) and this process may write it. */
  async ready(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root, constants.W_OK);
  }

  async delete(key: string): Promise<void> {
    await rm(this.dataPath(key), { force: true });
    await rm(this.metaPath(key), { force: true });
  }
}

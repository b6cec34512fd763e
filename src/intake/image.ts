// Turns the request's image source into what a job needs: checked image facts and where the bytes live.
// Uploaded, base64 and URL images are written to jobs/{id}/input by the caller once every check of the
// request passed (and deleted again if the job is refused); s3 references are used in place.
import type { Config } from '../../lib/config.js';
import type { Logger } from '../../lib/log.js';
import type { Allowlist } from '../../lib/net/ssrf.js';
import type { BlobStore } from '../../lib/storage/index.js';
import { decodeBase64Image } from './base64.js';
import { probeImage, type ImageInfo } from './probe.js';
import type { ImageSource } from './request.js';
import { parseS3Ref, probeS3Ref, type ProbeCache } from './s3-ref.js';
import { fetchImageUrl } from './url.js';

export type ResolvedImage = { info: ImageInfo } & ({ bytes: Buffer; storageKey?: undefined } | { bytes?: undefined; storageKey: string });

export interface IntakeDeps {
  config: Config;
  store: BlobStore;
  allowlist: Allowlist;
  probes: ProbeCache;
  /** The request's logger: the cause of an image URL's fetch failure goes there, not to the client. */
  log?: () => Logger;
}

/** `keyId`: the API key submitting (s3 references to another key's uploads are refused). */
export async function resolveImage(src: ImageSource, keyId: string, d: IntakeDeps): Promise<ResolvedImage> {
  const { maxImageBytes, maxPixels, urlFetchTimeoutMs, urlMaxRedirects } = d.config.limits;
  switch (src.kind) {
    case 's3': {
      const key = parseS3Ref(src.ref, d.config.storage.bucket, keyId);
      return { info: await probeS3Ref(key, { ...d, maxImageBytes, maxPixels }), storageKey: key };
    }
    case 'file':
      return { info: await probeImage(src.bytes, maxPixels, '/image'), bytes: src.bytes };
    case 'base64': {
      const bytes = decodeBase64Image(src.text, maxImageBytes);
      return { info: await probeImage(bytes, maxPixels, '/image/base64'), bytes };
    }
    case 'url': {
      const bytes = await fetchImageUrl(src.url, {
        allowlist: d.allowlist,
        maxBytes: maxImageBytes,
        timeoutMs: urlFetchTimeoutMs,
        maxRedirects: urlMaxRedirects,
        ca: d.config.urlCa,
        log: d.log,
      });
      return { info: await probeImage(bytes, maxPixels, '/image/url'), bytes };
    }
  }
}

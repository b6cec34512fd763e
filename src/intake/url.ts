// Image URLs: fetched once at submit through the SSRF guard with the image size cap and a deadline, so
// the worker never contacts user-supplied hosts. Every failure is a 422 naming /image/url.
// Every network failure (refused or reset connection, DNS, TLS, timeout, redirect loop, non-2xx status, empty
// body) is one answer, url-unreachable with the same detail, so the answer cannot tell a closed port from an
// open one (a port scanner); the cause goes to the request's log. A URL refused by policy (url-refused: the
// SSRF guard, the scheme), an invalid URL and an oversized image keep their own answers.
import { FetchError, fetchLimited } from '../../lib/net/fetch-limited.js';
import type { Allowlist } from '../../lib/net/ssrf.js';
import type { Logger } from '../../lib/log.js';
import { invalidField } from '../problem.js';

const POINTER = '/image/url';
export const UNREACHABLE_DETAIL = 'could not fetch the image from the URL';

const SLUGS: Record<FetchError['code'], string | null> = {
  bad_url: 'url-invalid',
  scheme_refused: 'url-refused',
  ssrf_refused: 'url-refused',
  too_large: 'image-too-large',
  // network failures: the generic answer
  unreachable: null,
  timeout: null,
  too_many_redirects: null,
};

export interface FetchImageOptions {
  allowlist: Allowlist;
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
  ca?: string;
  /** The request's logger (request id bound), for the cause of a network failure. */
  log?: () => Logger;
}

export async function fetchImageUrl(url: string, { log, ...opts }: FetchImageOptions): Promise<Buffer> {
  const unreachable = (code: string, cause: string) => {
    let host: string | undefined;
    try {
      host = new URL(url).host; // the host only: a query string can carry a signature
    } catch {
      host = undefined;
    }
    log?.().info({ image_url_host: host, code, cause }, 'image URL fetch failed');
    return invalidField(POINTER, UNREACHABLE_DETAIL, 'url-unreachable');
  };
  let res;
  try {
    res = await fetchLimited(url, { ...opts, headers: { accept: 'image/*' } });
  } catch (e) {
    if (!(e instanceof FetchError)) throw e;
    const slug = SLUGS[e.code];
    throw slug ? invalidField(POINTER, e.message, slug) : unreachable(e.code, e.message);
  }
  if (res.status < 200 || res.status >= 300) throw unreachable('http_status', `${new URL(res.url).host} answered HTTP ${res.status}`);
  if (res.body.length === 0) throw unreachable('empty_body', `${new URL(res.url).host} answered with an empty body`);
  return res.body;
}

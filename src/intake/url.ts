// Image URLs: fetched once at submit through the SSRF guard with the image size cap and a deadline, so
// the worker never contacts user-supplied hosts. Every failure is a 422 naming /image/url.
import { FetchError, fetchLimited } from '../../lib/net/fetch-limited.js';
import type { Allowlist } from '../../lib/net/ssrf.js';
import { invalidField } from '../problem.js';

const POINTER = '/image/url';

const SLUGS: Record<FetchError['code'], string> = {
  bad_url: 'url-invalid',
  scheme_refused: 'url-refused',
  ssrf_refused: 'url-refused',
  unreachable: 'url-unreachable',
  timeout: 'url-timeout',
  too_large: 'image-too-large',
  too_many_redirects: 'url-unreachable',
};

export async function fetchImageUrl(
  url: string,
  opts: { allowlist: Allowlist; maxBytes: number; timeoutMs: number; maxRedirects: number; ca?: string },
): Promise<Buffer> {
  try {
    const res = await fetchLimited(url, { ...opts, headers: { accept: 'image/*' } });
    if (res.status < 200 || res.status >= 300) throw invalidField(POINTER, `${url} answered HTTP ${res.status}`, 'url-unreachable');
    if (res.body.length === 0) throw invalidField(POINTER, `${url} answered with an empty body`, 'url-unreachable');
    return res.body;
  } catch (e) {
    if (e instanceof FetchError) throw invalidField(POINTER, e.message, SLUGS[e.code]);
    throw e;
  }
}

// Outbound HTTP(S) for user-supplied URLs: SSRF-guarded (lib/net/ssrf.ts), a cap on response bytes, one
// deadline for the whole exchange including redirects, and every redirect target checked again.
// https only; http only for allowlisted hosts (local tests, internal receivers an operator permits).
// Messages name the URL's host and an error code, never an address it resolved to (they reach the webhook
// owner as an attempt's `error`); image URLs turn them into one generic answer (src/intake/url.ts).
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { checkUrlHost, guardedLookup, hostAllowlisted, SsrfError, urlPort, type Allowlist } from './ssrf.js';

export type FetchErrorCode =
  | 'bad_url'
  | 'scheme_refused'
  | 'ssrf_refused'
  | 'unreachable'
  | 'timeout'
  | 'too_large'
  | 'too_many_redirects';

export class FetchError extends Error {
  constructor(
    readonly code: FetchErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface FetchLimitedOptions {
  allowlist: Allowlist;
  maxBytes: number;
  timeoutMs: number;
  /** Redirects to follow (each target re-checked); 0 returns the 3xx response itself. */
  maxRedirects?: number;
  method?: 'GET' | 'POST' | 'HEAD';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Extra CA certificates (PEM) trusted for https, e.g. a private CA of allowlisted internal hosts. */
  ca?: string;
}

export interface FetchLimitedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered, after redirects. */
  url: string;
}

/** `redirectFrom`: the URL whose redirect led here (the messages then say so). Order of checks: the URL's form,
 *  then its host (an IP literal or localhost name that is refused on any scheme), then its scheme. */
function parseTarget(raw: string, list: Allowlist, redirectFrom?: URL): URL {
  const via = redirectFrom ? `a redirect from ${redirectFrom.host} to ` : '';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FetchError('bad_url', via ? `${via}an invalid URL` : `not a valid URL: ${raw}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new FetchError('scheme_refused', `${via}a ${url.protocol} URL is not allowed: only https (or http to an allowlisted host)`);
  }
  if (url.username || url.password) throw new FetchError('bad_url', `${via}URLs with credentials are not accepted`);
  try {
    checkUrlHost(url, list);
  } catch (e) {
    throw new FetchError('ssrf_refused', `${via}${(e as Error).message}`);
  }
  if (url.protocol === 'http:' && !hostAllowlisted(url.hostname, list, urlPort(url))) {
    throw new FetchError('scheme_refused', `${via}http to ${url.host} is not allowed: use https`);
  }
  return url;
}

function requestOnce(url: URL, opts: FetchLimitedOptions, deadline: number): Promise<FetchLimitedResponse> {
  return new Promise((resolve, reject) => {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return reject(new FetchError('timeout', `no answer from ${url.host} within ${opts.timeoutMs} ms`));
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, {
      method: opts.method ?? 'GET',
      headers: opts.headers,
      lookup: guardedLookup(opts.allowlist, urlPort(url)),
      agent: false,
      ...(opts.ca && url.protocol === 'https:' ? { ca: [...tls.rootCertificates, opts.ca] } : {}),
    });
    const fail = (e: FetchError): void => {
      req.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new FetchError('timeout', `no complete answer from ${url.host} within ${opts.timeoutMs} ms`)),
      remaining,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      if (e instanceof FetchError) return reject(e);
      if (e instanceof SsrfError) return reject(new FetchError('ssrf_refused', e.message));
      // The error code only: a message can name the address connected to ("connect ECONNREFUSED 10.0.0.5:443").
      reject(new FetchError('unreachable', `${url.host}: ${(e as NodeJS.ErrnoException).code ?? 'connection failed'}`));
    });
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > opts.maxBytes) {
        clearTimeout(timer);
        return fail(new FetchError('too_large', `${url.host} announces ${declared} bytes, more than the ${opts.maxBytes} allowed`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > opts.maxBytes) {
          clearTimeout(timer);
          return fail(new FetchError('too_large', `${url.host} sent more than the ${opts.maxBytes} bytes allowed`));
        }
        chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url: url.href });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(new FetchError('unreachable', `${url.host}: ${(e as NodeJS.ErrnoException).code ?? 'the answer was cut off'}`));
      });
    });
    req.end(opts.body);
  });
}

/** A Location header resolved against the URL that sent it; an unparsable one is left for parseTarget to refuse. */
function resolveLocation(location: string, base: URL): string {
  try {
    return new URL(location, base).href;
  } catch {
    return location;
  }
}

export async function fetchLimited(rawUrl: string, opts: FetchLimitedOptions): Promise<FetchLimitedResponse> {
  const deadline = Date.now() + opts.timeoutMs;
  const maxRedirects = opts.maxRedirects ?? 0;
  let url = parseTarget(rawUrl, opts.allowlist);
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(url, opts, deadline);
    const location = res.headers.location;
    if (res.status < 300 || res.status >= 400 || !location || maxRedirects === 0) return res;
    if (hop >= maxRedirects) throw new FetchError('too_many_redirects', `more than ${maxRedirects} redirects from ${rawUrl}`);
    url = parseTarget(resolveLocation(location, url), opts.allowlist, url);
  }
}

// Outbound HTTP(S) for user-supplied URLs: SSRF-guarded (lib/net/ssrf.ts), a cap on response bytes, one
// deadline for the whole exchange including redirects, and every redirect target checked again.
// https only; http only for allowlisted hosts (local tests, internal receivers an operator permits).
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { checkUrlHost, guardedLookup, hostAllowlisted, SsrfError, type Allowlist } from './ssrf.js';

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

function parseTarget(raw: string, list: Allowlist): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FetchError('bad_url', `not a valid URL: ${raw}`);
  }
  if (url.username || url.password) throw new FetchError('bad_url', 'URLs with credentials are not accepted');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && hostAllowlisted(url.hostname, list))) {
    throw new FetchError('scheme_refused', `scheme ${url.protocol} is not allowed for ${url.hostname} (use https)`);
  }
  try {
    checkUrlHost(url, list);
  } catch (e) {
    throw new FetchError('ssrf_refused', (e as Error).message);
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
      lookup: guardedLookup(opts.allowlist),
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
      reject(new FetchError('unreachable', `${url.host}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
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
        reject(new FetchError('unreachable', `${url.host}: ${e.message}`));
      });
    });
    req.end(opts.body);
  });
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
    url = parseTarget(new URL(location, url).href, opts.allowlist);
  }
}

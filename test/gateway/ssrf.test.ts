// The SSRF guard and the limited fetch that image URLs and webhooks go through.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchError, fetchLimited } from '../../lib/net/fetch-limited.js';
import { checkAddress, guardedLookup, nonPublicRange, parseAllowlist } from '../../lib/net/ssrf.js';

describe('nonPublicRange', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['::1', 'loopback'],
    ['fd00::1', 'uniqueLocal'],
    ['fe80::1', 'linkLocal'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'linkLocal'],
  ])('%s is %s', (ip, range) => expect(nonPublicRange(ip)).toBe(range));

  it('public unicast passes', () => {
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111']) expect(nonPublicRange(ip), ip).toBeNull();
  });
});

describe('allowlist', () => {
  const list = parseAllowlist(['internal.example', '*.svc.local', '10.9.0.0/16', '::1']);
  it('permits named hosts, wildcard suffixes and CIDRs, nothing else', () => {
    expect(() => checkAddress('internal.example', '10.0.0.5', list)).not.toThrow();
    expect(() => checkAddress('api.svc.local', '192.168.1.2', list)).not.toThrow();
    expect(() => checkAddress('other.example', '10.9.3.4', list)).not.toThrow();
    expect(() => checkAddress('::1', '::1', list)).not.toThrow();
    expect(() => checkAddress('other.example', '10.8.3.4', list)).toThrow(/not allowed/);
    expect(() => checkAddress('svc.local.evil.com', '127.0.0.1', list)).toThrow(/not allowed/);
  });
});

describe('guardedLookup', () => {
  const lookup = (host: string, all: boolean, list = parseAllowlist([])) =>
    new Promise<unknown>((resolve, reject) =>
      guardedLookup(list)(host, { all }, (err, address) => (err ? reject(err) : resolve(address))),
    );

  it('refuses a name that resolves to loopback, in both callback shapes Node uses', async () => {
    await expect(lookup('localhost', false)).rejects.toThrow(/loopback/);
    await expect(lookup('localhost', true)).rejects.toThrow(/loopback/);
  });

  it('returns the checked address when the allowlist permits it', async () => {
    await expect(lookup('localhost', false, parseAllowlist(['localhost']))).resolves.toMatch(/^(127\.0\.0\.1|::1)$/);
  });
});

describe('fetchLimited', () => {
  let server: http.Server;
  let base: string;
  const list = parseAllowlist(['127.0.0.1']);
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/echo') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.writeHead(200).end(Buffer.concat(chunks)));
      } else if (req.url === '/redirect') res.writeHead(307, { location: '/echo' }).end();
      else if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
      else res.writeHead(410).end('gone');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('posts a body and returns status and bytes (webhook use)', async () => {
    const res = await fetchLimited(`${base}/echo`, { allowlist: list, maxBytes: 100, timeoutMs: 2000, method: 'POST', body: 'hello' });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello');
    expect((await fetchLimited(`${base}/other`, { allowlist: list, maxBytes: 100, timeoutMs: 2000 })).status).toBe(410);
  });

  it('returns a redirect as is with maxRedirects 0, follows it otherwise, and stops loops', async () => {
    expect((await fetchLimited(`${base}/redirect`, { allowlist: list, maxBytes: 100, timeoutMs: 2000 })).status).toBe(307);
    const followed = await fetchLimited(`${base}/redirect`, { allowlist: list, maxBytes: 100, timeoutMs: 2000, maxRedirects: 2 });
    expect(followed.url).toBe(`${base}/echo`);
    await expect(fetchLimited(`${base}/loop`, { allowlist: list, maxBytes: 100, timeoutMs: 2000, maxRedirects: 3 })).rejects.toMatchObject({ code: 'too_many_redirects' });
  });

  it('refuses credentials in URLs, non-http schemes, and http to hosts off the allowlist', async () => {
    const opts = { allowlist: parseAllowlist([]), maxBytes: 100, timeoutMs: 2000 };
    await expect(fetchLimited('https://u:p@example.com/', opts)).rejects.toMatchObject({ code: 'bad_url' });
    await expect(fetchLimited('file:///etc/passwd', opts)).rejects.toMatchObject({ code: 'scheme_refused' });
    await expect(fetchLimited('http://example.com/', opts)).rejects.toBeInstanceOf(FetchError);
  });
});

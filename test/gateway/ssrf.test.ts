// The SSRF guard and the limited fetch that image URLs and webhooks go through.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchError, fetchLimited } from '../../lib/net/fetch-limited.js';
import { checkAddress, checkUrlHost, guardedLookup, hostAllowlisted, nonPublicRange, parseAllowlist } from '../../lib/net/ssrf.js';

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

describe('host:port allowlist entries', () => {
  const list = parseAllowlist(['127.0.0.1:8443', '[::1]:9000', 'localhost:3000', '*.svc.local:8080', '10.9.0.0/16:443', 'internal.example']);

  it('allow only the named port; a bare entry keeps allowing every port', () => {
    expect(hostAllowlisted('127.0.0.1', list, 8443)).toBe(true);
    expect(hostAllowlisted('127.0.0.1', list, 6379)).toBe(false);
    expect(hostAllowlisted('127.0.0.1', list)).toBe(false); // no port known: host-wide entries only
    expect(hostAllowlisted('[::1]', list, 9000)).toBe(true);
    expect(hostAllowlisted('::1', list, 9001)).toBe(false);
    expect(hostAllowlisted('localhost', list, 3000)).toBe(true);
    expect(hostAllowlisted('localhost', list, 6379)).toBe(false);
    expect(hostAllowlisted('api.svc.local', list, 8080)).toBe(true);
    expect(hostAllowlisted('api.svc.local', list, 80)).toBe(false);
    expect(hostAllowlisted('internal.example', list, 1)).toBe(true);
    expect(hostAllowlisted('internal.example', list, 65535)).toBe(true);
  });

  it('check resolved addresses on the port too', () => {
    expect(() => checkAddress('a.example', '127.0.0.1', list, 8443)).not.toThrow();
    expect(() => checkAddress('a.example', '127.0.0.1', list, 6379)).toThrow(/loopback address, which is not allowed/);
    expect(() => checkAddress('a.example', '10.9.1.1', list, 443)).not.toThrow();
    expect(() => checkAddress('a.example', '10.9.1.1', list, 80)).toThrow(/private address/);
    expect(() => checkAddress('localhost', '127.0.0.1', list, 3000)).not.toThrow();
    expect(() => checkAddress('localhost', '127.0.0.1', list, 3001)).toThrow(/not allowed/);
  });

  it('check URLs on their explicit or default port', () => {
    const http = parseAllowlist(['127.0.0.1:80']);
    expect(() => checkUrlHost(new URL('http://127.0.0.1/'), http)).not.toThrow();
    expect(() => checkUrlHost(new URL('http://127.0.0.1:80/'), http)).not.toThrow();
    expect(() => checkUrlHost(new URL('https://127.0.0.1/'), http)).toThrow(/loopback/);
    expect(() => checkUrlHost(new URL('http://127.0.0.1:6379/'), http)).toThrow(/loopback/);
  });

  it('refuse entries that are no host, address or CIDR, and bad ports, at parse time', () => {
    for (const bad of ['127.0.0.1:0', '127.0.0.1:65536', 'localhost:http', '[::1]:', 'http://x.example', 'a b', '10.0.0.0/33']) {
      expect(() => parseAllowlist([bad]), bad).toThrow(/URL_ALLOWLIST entry/);
    }
    // A bare IPv6 address is host-wide (a port needs brackets).
    expect(hostAllowlisted('fe80::1:8080', parseAllowlist(['fe80::1:8080']), 1)).toBe(true);
  });
});

describe('refusal messages', () => {
  it('give the address class and never an address a name resolved to', () => {
    expect(() => checkAddress('169.254.169.254', '169.254.169.254', parseAllowlist([]))).toThrow('169.254.169.254 is a link-local address, which is not allowed');
    let message = '';
    try {
      checkAddress('db.corp.example', '10.20.30.40', parseAllowlist([]));
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe('db.corp.example resolves to a private address, which is not allowed');
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
      else if (req.url === '/to-file') res.writeHead(302, { location: 'file:///etc/passwd' }).end();
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

  it('with a host:port entry, fetches that port and refuses another port of the host before connecting', async () => {
    const port = Number(new URL(base).port);
    const one = parseAllowlist([`127.0.0.1:${port}`]);
    expect((await fetchLimited(`${base}/echo`, { allowlist: one, maxBytes: 100, timeoutMs: 2000 })).status).toBe(200);
    const redisPort = Number(new URL(process.env.TEST_REDIS_URL!).port);
    await expect(fetchLimited(`http://127.0.0.1:${redisPort}/`, { allowlist: one, maxBytes: 100, timeoutMs: 2000 }))
      .rejects.toMatchObject({ code: 'ssrf_refused', message: '127.0.0.1 is a loopback address, which is not allowed' });
  });

  it('names the address class of a refused IP literal before its scheme, and the scheme of a refused redirect', async () => {
    const opts = { allowlist: parseAllowlist([]), maxBytes: 100, timeoutMs: 2000 };
    await expect(fetchLimited('http://169.254.169.254/latest/meta-data/', opts))
      .rejects.toMatchObject({ code: 'ssrf_refused', message: '169.254.169.254 is a link-local address, which is not allowed' });
    await expect(fetchLimited('http://localhost/', opts)).rejects.toMatchObject({ code: 'ssrf_refused', message: 'localhost is a loopback address, which is not allowed' });
    await expect(fetchLimited('file:///etc/passwd', opts))
      .rejects.toMatchObject({ code: 'scheme_refused', message: 'a file: URL is not allowed: only https (or http to an allowlisted host)' });
    await expect(fetchLimited(`${base}/to-file`, { ...opts, allowlist: list, maxRedirects: 2 })).rejects.toMatchObject({
      code: 'scheme_refused',
      message: `a redirect from ${new URL(base).host} to a file: URL is not allowed: only https (or http to an allowlisted host)`,
    });
  });

  it('refuses credentials in URLs, non-http schemes, and http to hosts off the allowlist', async () => {
    const opts = { allowlist: parseAllowlist([]), maxBytes: 100, timeoutMs: 2000 };
    await expect(fetchLimited('https://u:p@example.com/', opts)).rejects.toMatchObject({ code: 'bad_url' });
    await expect(fetchLimited('file:///etc/passwd', opts)).rejects.toMatchObject({ code: 'scheme_refused' });
    await expect(fetchLimited('http://example.com/', opts)).rejects.toBeInstanceOf(FetchError);
  });
});

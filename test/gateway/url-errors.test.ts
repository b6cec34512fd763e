// Image URL failures as a client sees them (issue 14, items 9 and 10): `host:port` allowlist entries reach that
// port only; every network failure (refused, reset, non-HTTP answer, DNS, timeout, redirect loop, error status,
// empty body) is one answer, url-unreachable with one detail, so the gateway cannot be used as a port scanner,
// while the cause goes to the request's log with its request id; a refusal by policy (url-refused) says why,
// address class before scheme, and a redirect to file: names the scheme.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { UNREACHABLE_DETAIL } from '../../src/intake/url.js';
import { assertMatchesSchema } from './openapi-schemas.js';
import { openHarness, png, problemOf, WORDS, type Harness } from './harness.js';
import { startImageServer, type ImageServer } from './image-server.js';

let server: ImageServer;
let other: ImageServer; // a second local server: an allowlisted port must not open this one
let hostWide: Harness; // URL_ALLOWLIST=127.0.0.1 (every port), its log read into `lines`
let portOnly: Harness; // URL_ALLOWLIST=127.0.0.1:<server's port>
let strict: Harness; // no allowlist
let garbage: net.Server; // speaks no HTTP, as Redis does not
const lines: string[] = [];
const sockets = new Set<net.Socket>();

const portOf = (url: string): number => Number(new URL(url).port);

beforeAll(async () => {
  const image = await png(24, 24);
  server = await startImageServer(image, 256 * 1024);
  other = await startImageServer(image, 256 * 1024);
  garbage = net.createServer((s) => {
    sockets.add(s);
    s.end('-ERR wrong protocol\r\n');
  });
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  hostWide = await openHarness({ URL_ALLOWLIST: '127.0.0.1' }, { log: createLogger({ level: 'info' }, sink) });
  portOnly = await openHarness({ URL_ALLOWLIST: `127.0.0.1:${portOf(server.url('/'))}` });
  strict = await openHarness();
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all([server.close(), other.close(), new Promise((r) => garbage.close(r))]);
  await Promise.all([hostWide.close(), portOnly.close(), strict.close()]);
});

async function refusal(h: Harness, url: string) {
  const res = await h.post({ image: { url }, tasks: WORDS });
  const body = await problemOf(res);
  assertMatchesSchema('Problem', body);
  expect(res.status, url).toBe(422);
  expect(body.errors?.[0]?.pointer, url).toBe('/image/url');
  return { body, requestId: res.headers.get('x-request-id') };
}

describe('host:port allowlist entries', () => {
  it('reach the named port over http, and no other port of the host', async () => {
    const ok = await portOnly.post({ image: { url: server.url('/image.png') }, tasks: WORDS });
    expect(ok.status).toBe(202);
    const redisPort = portOf(process.env.TEST_REDIS_URL!);
    for (const url of [other.url('/image.png'), `http://127.0.0.1:${redisPort}/`, `https://127.0.0.1:${redisPort}/`, `http://localhost:${redisPort}/`]) {
      const { body } = await refusal(portOnly, url);
      expect(body.type, url).toBe('/problems/url-refused');
      expect(body.detail, url).toMatch(/loopback address, which is not allowed/);
    }
    expect(other.hits).toEqual([]);
  });

  it('apply to webhook URLs too: http to the named port is accepted, another port of the host is refused', async () => {
    const base64 = (await png(8, 8)).toString('base64');
    const ok = await portOnly.post({ image: { base64 }, tasks: WORDS, webhook: { url: server.url('/hook') } });
    expect(ok.status).toBe(202);
    const res = await portOnly.post({ image: { base64 }, tasks: WORDS, webhook: { url: other.url('/hook') } });
    const body = await problemOf(res);
    expect(res.status).toBe(422);
    expect(body.errors).toEqual([{ pointer: '/webhook/url', detail: 'webhook URL refused: 127.0.0.1 is a loopback address, which is not allowed' }]);
  });
});

describe('network failures', () => {
  it('give one type and one detail whatever the cause, and log the cause with the request id', async () => {
    const redisPort = portOf(process.env.TEST_REDIS_URL!);
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const cases: [string, RegExp][] = [
      [`http://127.0.0.1:${closed}/a.png`, /ECONNREFUSED/],
      [server.url('/reset'), /ECONNRESET|socket hang up/],
      [`http://127.0.0.1:${(garbage.address() as AddressInfo).port}/`, /HPE_|ECONNRESET/],
      [`http://127.0.0.1:${redisPort}/`, /HPE_|ECONNRESET|EPIPE/], // Redis drops a request that looks like HTTP
      ['https://no-such-host.invalid/a.png', /ENOTFOUND|EAI_AGAIN/],
      [server.url('/slow'), /within 1500 ms/],
      [server.url('/loop'), /more than 3 redirects/],
      [server.url('/missing'), /HTTP 404/],
      [server.url('/error'), /HTTP 500/],
      [server.url('/empty'), /empty body/],
    ];
    const answers = new Set<string>();
    for (const [url, cause] of cases) {
      const { body, requestId } = await refusal(hostWide, url);
      const { instance: _, ...rest } = body as typeof body & { instance?: string };
      answers.add(JSON.stringify(rest));
      const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'image URL fetch failed' && l.request_id === requestId);
      expect(logged, url).toHaveLength(1);
      expect(String(logged[0]!.cause), url).toMatch(cause);
    }
    expect([...answers]).toEqual([
      JSON.stringify({ type: '/problems/url-unreachable', title: 'Invalid request', status: 422, detail: UNREACHABLE_DETAIL, errors: [{ pointer: '/image/url', detail: UNREACHABLE_DETAIL }] }),
    ]);
  });

  it('a refusal by policy stays url-refused and says why', async () => {
    const { body } = await refusal(hostWide, server.url('/to-metadata'));
    expect(body.type).toBe('/problems/url-refused');
    expect(body.detail).toMatch(/169\.254\.169\.254 is a link-local address/);
  });
});

describe('refusal texts', () => {
  it('name the address class of a private, link-local or loopback host before the scheme', async () => {
    for (const [url, what] of [
      ['http://169.254.169.254/latest/meta-data/', 'a link-local address'],
      ['http://10.0.0.8/a.png', 'a private address'],
      ['http://127.0.0.1:6379/', 'a loopback address'],
      ['http://[::1]/a.png', 'a loopback address'],
      ['http://localhost/a.png', 'a loopback address'],
      ['https://169.254.169.254/latest/meta-data/', 'a link-local address'],
    ] as const) {
      const { body } = await refusal(strict, url);
      expect(body.type, url).toBe('/problems/url-refused');
      expect(body.detail, url).toContain(`is ${what}, which is not allowed`);
      expect(body.detail, url).not.toMatch(/scheme|https/);
    }
    const { body } = await refusal(strict, 'http://example.com/a.png');
    expect(body.detail).toBe('http to example.com is not allowed: use https');
  });

  it('a redirect to file: names the scheme, not an empty host', async () => {
    const { body } = await refusal(hostWide, server.url('/to-file'));
    expect(body.type).toBe('/problems/url-refused');
    expect(body.detail).toBe(`a redirect from ${new URL(server.url('/')).host} to a file: URL is not allowed: only https (or http to an allowlisted host)`);
  });
});

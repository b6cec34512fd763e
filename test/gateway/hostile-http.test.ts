// Slow and broken clients against src/server.ts as a process (issue 14, items 8 and 11): a body that never
// completes and headers that never end are 408, oversized headers 431 and unparseable HTTP 400, each as
// problem+json within a bounded time, and the server goes on serving. Short timeouts through the environment.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { png } from './harness.js';
import { parseRaw, rawExchange, startGateway, type GatewayProcess } from '../support/gateway-process.js';

const REQUEST_TIMEOUT_MS = 1500;
const HEADERS_TIMEOUT_MS = 1000;
const MAX_HEADER_BYTES = 4096;

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await startGateway({
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    MAX_HEADER_BYTES: String(MAX_HEADER_BYTES),
  });
});
afterAll(async () => {
  await gw?.stop();
  if (process.env.DEBUG_CHILDREN) console.log(gw?.output());
});

function expectProblem(raw: string, status: number, type: string): { detail: string } {
  const r = parseRaw(raw);
  expect(r.status, raw).toBe(status);
  expect(r.headers['content-type']).toBe('application/problem+json');
  expect(r.headers['x-content-type-options']).toBe('nosniff');
  expect(r.headers.connection).toBe('close');
  const body = JSON.parse(r.body) as { type: string; status: number; title: string; detail: string };
  expect(body).toMatchObject({ type, status });
  expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
  return body;
}

async function stillServes(): Promise<void> {
  const res = await fetch(`${gw.base}/healthz`);
  expect(res.status).toBe(200);
}

describe('slow clients (item 8)', () => {
  it('a body announced as 100 bytes that stops after 4 gets 408 problem+json within the request timeout', async () => {
    const { response, ms } = await rawExchange(gw.port,
      `POST /v1/perceive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"im`);
    const p = expectProblem(response, 408, '/problems/request-timeout');
    expect(p.detail).toContain(`${REQUEST_TIMEOUT_MS} ms`);
    expect(ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    expect(ms).toBeLessThan(REQUEST_TIMEOUT_MS + 2000);
    await stillServes();
  });

  it('a body trickled a byte at a time is cut at the request timeout too', async () => {
    const t0 = Date.now();
    const s = net.connect(gw.port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('error', () => undefined);
    s.write(`POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
    const tick = setInterval(() => s.writable && s.write('a'), 200);
    await new Promise((r) => s.once('close', r));
    clearInterval(tick);
    expectProblem(got, 408, '/problems/request-timeout');
    expect(Date.now() - t0).toBeLessThan(REQUEST_TIMEOUT_MS + 2000);
  });

  it('headers that never end get 408 within the headers timeout', async () => {
    const { response, ms } = await rawExchange(gw.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaa`);
    expectProblem(response, 408, '/problems/request-timeout');
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
    await stillServes();
  });

  it('a request whose body arrived is not cut by the timeout while it waits (Prefer: wait)', async () => {
    const t0 = Date.now();
    const res = await fetch(`${gw.base}/v1/perceive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json', prefer: 'wait=3' },
      body: JSON.stringify({ image: { base64: (await png()).toString('base64') }, tasks: [{ type: 'words', phrases: ['dog'] }] }),
    });
    expect(res.status).toBe(202); // no worker: still queued after the wait
    expect(res.headers.get('preference-applied')).toBe('wait=3');
    expect(Date.now() - t0).toBeGreaterThan(REQUEST_TIMEOUT_MS + 500);
  });
});

describe('requests the HTTP parser refuses (item 11)', () => {
  it('headers over MAX_HEADER_BYTES get 431 problem+json, not an empty body', async () => {
    const { response } = await rawExchange(gw.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES * 2)}\r\n\r\n`);
    const p = expectProblem(response, 431, '/problems/request-header-fields-too-large');
    expect(p.detail).toContain(String(MAX_HEADER_BYTES));
    await stillServes();
  });

  it('a request that is not HTTP gets 400 problem+json', async () => {
    const { response } = await rawExchange(gw.port, 'HELLO THERE\r\n\r\n');
    expectProblem(response, 400, '/problems/malformed-http');
    const { response: badLength } = await rawExchange(gw.port, 'POST /v1/perceive HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n');
    expectProblem(badLength, 400, '/problems/malformed-http');
    await stillServes();
  });
});

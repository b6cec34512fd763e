// The gateway over real HTTP (@hono/node-server), where request bodies are read from the Node stream, and
// src/server.ts as a process: it serves, and on SIGTERM finishes in-flight requests and exits 0.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../lib/config.js';
import { KEYS, openHarness, png, WORDS, type Harness } from './harness.js';

let h: Harness;
let server: ServerType;
let base: string;
let image: Buffer;

beforeAll(async () => {
  h = await openHarness();
  image = await png();
  server = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.close();
  await h.close();
});

/** A POST with chunked transfer encoding (no Content-Length), body written in pieces. */
function chunkedPost(url: string, pieces: Buffer[], headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    for (const p of pieces) req.write(p);
    req.end();
  });
}

describe('over HTTP', () => {
  const auth = { authorization: `Bearer ${KEYS.alpha}` };

  it('accepts JSON and multipart bodies', async () => {
    const json = await fetch(`${base}/v1/perceive`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ image: { base64: image.toString('base64') }, tasks: WORDS }),
    });
    expect(json.status).toBe(202);
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(image)]), 'a.png');
    form.set('request', JSON.stringify({ tasks: WORDS }));
    const multipart = await fetch(`${base}/v1/perceive`, { method: 'POST', headers: auth, body: form });
    expect(multipart.status).toBe(202);
  });

  it('accepts a chunked JSON body and refuses a chunked body over the limit with 413', async () => {
    const body = Buffer.from(JSON.stringify({ image: { base64: image.toString('base64') }, tasks: WORDS }));
    const ok = await chunkedPost(`${base}/v1/perceive`, [body.subarray(0, 10), body.subarray(10)], { ...auth, 'content-type': 'application/json' });
    expect(ok.status).toBe(202);
    const piece = Buffer.alloc(1024 * 1024, 0x41);
    const big = await chunkedPost(`${base}/v1/perceive`, Array.from({ length: 6 }, () => piece), { ...auth, 'content-type': 'application/json' });
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).type).toBe('/problems/request-too-large');
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    // A raw socket: announce 50 MB, send one byte, and read the answer while the body is still "coming".
    const { port } = new URL(base);
    const head = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(port), '127.0.0.1', () =>
        s.write(`POST /v1/perceive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.alpha}\r\nContent-Type: application/json\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n{`),
      );
      s.once('data', (d) => {
        resolve(d.toString());
        s.destroy();
      });
      s.on('error', reject);
    });
    expect(head).toMatch(/^HTTP\/1\.1 413 /);
    expect(head).toContain('request-too-large');
  });
});

describe('src/server.ts', () => {
  it('serves, and on SIGTERM lets an in-flight request finish, then exits 0', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        REDIS_URL: process.env.TEST_REDIS_URL,
        STORAGE_DRIVER: 'fs',
        STORAGE_DIR: mkdtempSync(path.join(os.tmpdir(), 'gw-server-')),
        QUEUE_PREFIX: `srv${port}`,
        API_KEYS: JSON.stringify([{ id: 'p', key_sha256: hashApiKey('sk-p'), webhook_secret: 'whsec_cHBwcHBwcHBwcHBwcHBwcA==' }]),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 300 && !out.includes('gateway listening'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('gateway listening');

    // An in-flight request: Prefer: wait holds it open for 2 s; SIGTERM arrives meanwhile.
    const inflight = fetch(`http://127.0.0.1:${port}/v1/perceive`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-p', 'content-type': 'application/json', prefer: 'wait=2' },
      body: JSON.stringify({ image: { base64: image.toString('base64') }, tasks: WORDS }),
    });
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(202);
    expect(await exited).toBe(0);
    expect(out).toContain('shutting down');
    expect(out).toContain('gateway stopped');
    expect(out).not.toContain('sk-p');
  });
});

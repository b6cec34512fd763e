// An https image URL end to end: a local TLS server with a certificate for "localhost", trusted through
// URL_CA_FILE; the connection goes to the address the SSRF guard checked (localhost is allowlisted) while
// TLS still verifies the certificate against the host name.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { inputKey } from '../../lib/storage/index.js';
import { UNREACHABLE_DETAIL } from '../../src/intake/url.js';
import { openHarness, png, problemOf, WORDS, type Harness } from './harness.js';

let trusted: Harness;
let untrusted: Harness;
let server: https.Server;
let port: number;
let image: Buffer;
const lines: string[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  image = await png(40, 30);
  server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' }).end(image);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  trusted = await openHarness({ URL_ALLOWLIST: 'localhost', URL_CA_FILE: path.join(dir, 'cert.pem') });
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  untrusted = await openHarness({ URL_ALLOWLIST: 'localhost' }, { log: createLogger({ level: 'info' }, sink) });
});
afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await Promise.all([trusted.close(), untrusted.close()]);
});

describe('https image URLs', () => {
  it('fetches over TLS from an allowlisted host whose certificate verifies', async () => {
    const res = await trusted.post({ image: { url: `https://localhost:${port}/image.png` }, tasks: WORDS });
    expect(res.status).toBe(202);
    const job = (await res.json()) as { id: string; input: { image: { width: number } } };
    expect(job.input.image.width).toBe(40);
    expect(await trusted.store.get(inputKey(job.id))).toEqual(image);
  });

  it('refuses a certificate that does not verify (422 url-unreachable, the generic detail; the TLS error is logged)', async () => {
    const res = await untrusted.post({ image: { url: `https://localhost:${port}/image.png` }, tasks: WORDS });
    expect(res.status).toBe(422);
    const p = await problemOf(res);
    expect(p.type).toBe('/problems/url-unreachable');
    expect(p.detail).toBe(UNREACHABLE_DETAIL);
    expect(p.errors?.[0]?.detail).toBe(UNREACHABLE_DETAIL);
    const requestId = res.headers.get('x-request-id');
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; request_id?: string; cause?: string }).find((l) => l.msg === 'image URL fetch failed' && l.request_id === requestId);
    expect(logged?.cause).toMatch(/SELF_SIGNED|CERT/i);
  });
});

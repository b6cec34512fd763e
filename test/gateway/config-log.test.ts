// Configuration parsing (errors name the variable and entry) and log redaction of secrets.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { hashApiKey, loadConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';

const key = { id: 'k1', key_sha256: hashApiKey('secret-key'), webhook_secret: 'whsec_abc' };

describe('loadConfig', () => {
  it('parses defaults and API keys with their limits', () => {
    const c = loadConfig({ API_KEYS: JSON.stringify([key]), URL_ALLOWLIST: 'a.example, 10.0.0.0/8' });
    expect(c.storage).toEqual({ driver: 'fs', dir: '.data/storage', bucket: 'local' });
    expect(c.apiKeys[0]).toMatchObject({ id: 'k1', rate_limit: 600, rate_limit_window_s: 60, max_concurrent_jobs: 16 });
    expect(c.urlAllowlist).toEqual(['a.example', '10.0.0.0/8']);
  });

  it('MAX_PREFER_WAIT_S: 60 s by default, lower for platforms with a shorter request timeout, never above 60', () => {
    expect(loadConfig({}).maxPreferWaitS).toBe(60);
    expect(loadConfig({ MAX_PREFER_WAIT_S: '29' }).maxPreferWaitS).toBe(29);
    expect(() => loadConfig({ MAX_PREFER_WAIT_S: '61' })).toThrow(/MAX_PREFER_WAIT_S/);
  });

  it('reads keys from API_KEYS_FILE as well', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keys-'));
    const file = path.join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify([{ ...key, id: 'from-file', key_sha256: hashApiKey('file-key') }]));
    const c = loadConfig({ API_KEYS: JSON.stringify([key]), API_KEYS_FILE: file });
    expect(c.apiKeys.map((k) => k.id)).toEqual(['k1', 'from-file']);
    expect(() => loadConfig({ API_KEYS_FILE: file, API_KEYS: JSON.stringify([{ ...key, key_sha256: hashApiKey('file-key') }]) })).toThrow(/same key_sha256/);
    expect(() => loadConfig({ API_KEYS_FILE: file, API_KEYS: JSON.stringify([{ ...key, id: 'from-file' }]) })).toThrow(/duplicate key id "from-file"/);
  });

  it('names what is wrong', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/PORT/);
    expect(() => loadConfig({ STORAGE_DRIVER: 's3' })).toThrow(/S3_BUCKET/);
    expect(() => loadConfig({ API_KEYS: '[{' })).toThrow(/API_KEYS: not valid JSON/);
    expect(() => loadConfig({ API_KEYS: JSON.stringify([{ ...key, key_sha256: 'plain' }]) })).toThrow(/entry 0\.key_sha256/);
    expect(() => loadConfig({ API_KEYS: JSON.stringify([key, key]) })).toThrow(/duplicate key id "k1"/);
  });
});

describe('createLogger', () => {
  it('redacts authorization headers, keys and webhook secrets', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = createLogger({ level: 'info' }, sink);
    log.info({ req: { headers: { authorization: 'Bearer secret-key' } }, apiKey: { webhook_secret: 'whsec_abc', id: 'k1' } }, 'x');
    log.info({ authorization: 'Bearer secret-key', api_key: 'secret-key' }, 'y');
    const out = lines.join('');
    expect(out).not.toContain('secret-key');
    expect(out).not.toContain('whsec_abc');
    expect(out).toContain('[redacted]');
    expect(out).toContain('"id":"k1"');
  });
});

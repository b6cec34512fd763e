// Schemathesis (PyPI; installed into .venv by scripts/setup-python.sh) against the real gateway (src/server.ts
// as a process, real Redis and S3 server) with a real perception worker on the deterministic test pipeline, so
// jobs finish and results and overlays are served: every operation of openapi.yaml is fuzzed, positive and
// negative, and each answer must be no 5xx, a documented status, a documented content type and match the
// documented schema (issue 14, item 11). Bounded: 30 examples per operation and phase, a fixed seed (the same
// cases every run: SCHEMATHESIS_SEED changes it, SCHEMATHESIS_MAX_EXAMPLES the count) and a hard time limit.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stopChild, TEST_PIPELINE } from '../support/processes.js';
import { startGateway, type GatewayProcess } from '../support/gateway-process.js';

const SCHEMATHESIS = path.resolve('.venv/bin/schemathesis');
const CHECKS = ['not_a_server_error', 'status_code_conformance', 'content_type_conformance', 'response_schema_conformance'];
const MAX_EXAMPLES = process.env.SCHEMATHESIS_MAX_EXAMPLES ?? '30';
const SEED = process.env.SCHEMATHESIS_SEED ?? '14';
const LIMIT_MS = 150_000;

let gw: GatewayProcess;
let worker: ChildProcess;

beforeAll(async () => {
  // Image URLs the fuzzer makes up are fetched (and fail) quickly.
  gw = await startGateway({ LOG_LEVEL: 'warn', URL_FETCH_TIMEOUT_MS: '1000', HEARTBEAT_MS: '1000' });
  worker = spawn(process.execPath, ['--import', 'tsx', 'workers/perception/main.ts'], {
    env: { ...process.env, ...gw.env, PIPELINE_MODULE: TEST_PIPELINE },
    stdio: process.env.DEBUG_CHILDREN ? 'inherit' : 'ignore',
  });
  // Ready once the worker beats: /readyz is 200, as the document promises when the service is up.
  for (let i = 0; i < 300; i++) {
    if ((await fetch(`${gw.base}/readyz`)).status === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the gateway did not become ready (no worker heartbeat)');
}, 120_000);

afterAll(async () => {
  if (worker) await stopChild(worker);
  await gw?.stop();
});

it('schemathesis finds no server error, undocumented status, content type or body', async () => {
  expect(existsSync(SCHEMATHESIS), `${SCHEMATHESIS} is missing: run scripts/setup-python.sh`).toBe(true);
  const args = [
    'run', `${gw.base}/openapi.yaml`,
    '--url', gw.base,
    '--header', `Authorization: Bearer ${gw.apiKey}`,
    '--checks', CHECKS.join(','),
    '--max-examples', MAX_EXAMPLES,
    '--seed', SEED,
    '--workers', '2',
    '--request-timeout', '20',
    '--suppress-health-check', 'all',
    '--generation-database', 'none',
    '--no-color',
  ];
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'schemathesis-')); // its report and example database stay out of the tree
  const child = spawn(SCHEMATHESIS, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', COLUMNS: '120' } });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const killer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  clearTimeout(killer);
  console.log(`schemathesis ${args.slice(1).join(' ').replace(gw.apiKey, '***')}\n${out.slice(-8000)}`);
  expect(code, `schemathesis exited ${code} (killed after ${LIMIT_MS} ms if null):\n${out.slice(-12_000)}\n--- gateway log ---\n${gw.output().slice(-4000)}`).toBe(0);
}, LIMIT_MS + 30_000);

// No container engine runs here, so the images are checked by what can be checked without one:
// - the Dockerfiles and compose.yaml, parsed, against the invariants (pinned bases, non-root final stage,
//   health checks, no secrets, multi-stage gateway, CUDA 12 + cuDNN GPU base with the CUDA provider install,
//   compose Redis noeviction + AOF, GPU worker behind a profile with a device reservation);
// - what they run: every COPY source exists, the TypeScript compiles with the images' tsconfig into the files
//   their CMDs name, the compiled gateway starts with the compose environment (pointed at the real test Redis
//   and S3) and passes the image's health check, the worker health check follows a real heartbeat, and the
//   worker entrypoint copies a bundle from an S3 prefix before exec'ing its command.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { hashApiKey, loadConfig } from '../../lib/config.js';
import { loadQueueSettings, startHeartbeat } from '../../lib/queue/index.js';
import { createRedis } from '../../lib/redis/index.js';
import { S3BlobStore } from '../../lib/storage/index.js';
import { bakedSecret, interpolate, isPinnedImage, parseDockerfile, type Stage } from './invariants.js';

const run = promisify(execFile);
const DOCKERFILES = ['gateway', 'worker-cpu', 'worker-gpu'].map((n) => `docker/${n}.Dockerfile`);
const parsed = Object.fromEntries(DOCKERFILES.map((f) => [f, parseDockerfile(readFileSync(f, 'utf8'))]));
// Compose resolves YAML merge keys (<<: *anchor); so does this parse.
const compose = parse(readFileSync('docker/compose.yaml', 'utf8'), { merge: true }) as {
  services: Record<string, {
    image?: string; build?: { context: string; dockerfile: string }; command?: string[]; environment?: Record<string, string>;
    healthcheck?: { test?: string[]; disable?: boolean }; profiles?: string[]; stop_grace_period?: string; secrets?: string[];
    deploy?: { resources?: { reservations?: { devices?: { driver?: string; count?: number; capabilities?: string[] }[] } } };
  }>;
};

const finalStage = (f: string): Stage => parsed[f]!.stages.at(-1)!;
const ops = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op);
const jsonArgs = (args: string): string[] => JSON.parse(args) as string[];
/** Compose durations used here: "660s" or "11m". */
function seconds(d: string): number {
  const m = /^(\d+)(s|m)$/.exec(d);
  if (!m) throw new Error(`unsupported duration "${d}"`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

describe('Dockerfiles', () => {
  it.each(DOCKERFILES)('%s: every base image is pinned (resolving ARG defaults) or an earlier stage', (f) => {
    const { args, stages } = parsed[f]!;
    const names = new Set<string>();
    for (const s of stages) {
      const ref = interpolate(s.from, args);
      expect(ref, `${f}: FROM ${s.from}`).toBeDefined();
      if (!names.has(ref!)) expect(isPinnedImage(ref!), `${f}: FROM ${ref} is not pinned`).toBe(true);
      if (s.name) names.add(s.name);
    }
  });

  it.each(DOCKERFILES)('%s: multi-stage, runs as a non-root user, has a HEALTHCHECK using the shipped script', (f) => {
    expect(parsed[f]!.stages.length).toBeGreaterThanOrEqual(2);
    const last = finalStage(f);
    const user = ops(last, 'USER').at(-1)?.args;
    expect(user, `${f}: final stage has no USER`).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    const hc = ops(last, 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const cmd = jsonArgs(hc[0]!.args.replace(/^.*?CMD\s+/, ''));
    expect(cmd.slice(0, 2)).toEqual(['node', 'docker/healthcheck.mjs']);
    expect(['gateway', 'worker']).toContain(cmd[2]);
    // The script the health check runs is copied into the image.
    expect(ops(last, 'COPY').some((c) => c.args.includes('docker/healthcheck.mjs'))).toBe(true);
    // So are the Redis scripts, which the compiled code loads at run time (tsc does not copy them into dist/).
    expect(ops(last, 'COPY').some((c) => c.args === 'lib/redis/lua lib/redis/lua'), f).toBe(true);
  });

  it.each(DOCKERFILES)('%s: no secret-looking ENV or ARG values', (f) => {
    const { args, stages } = parsed[f]!;
    const pairs: [string, string][] = Object.entries(args);
    for (const s of stages) {
      for (const i of [...ops(s, 'ENV'), ...ops(s, 'ARG')]) {
        for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) pairs.push([m[1]!, m[2]!]);
      }
    }
    expect(pairs.length).toBeGreaterThan(0);
    for (const [k, v] of pairs) expect(bakedSecret(k, v), `${f}: ${k}`).toBeNull();
  });

  it.each(DOCKERFILES)('%s: every COPY source from the build context exists', (f) => {
    for (const s of parsed[f]!.stages) {
      for (const c of ops(s, 'COPY')) {
        if (c.args.includes('--from=')) continue;
        const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        for (const src of parts.slice(0, -1)) expect(existsSync(src), `${f} line ${c.line}: ${src}`).toBe(true);
      }
    }
  });

  it('the gateway image drops ONNX Runtime; the GPU image installs its CUDA 12 provider on a CUDA 12 + cuDNN runtime', () => {
    const gw = parsed['docker/gateway.Dockerfile']!.stages.flatMap((s) => ops(s, 'RUN')).map((r) => r.args).join('\n');
    expect(gw).toContain('rm -rf node_modules/onnxruntime-node');
    const gpu = parsed['docker/worker-gpu.Dockerfile']!;
    const base = interpolate(finalStage('docker/worker-gpu.Dockerfile').from, gpu.args)!;
    expect(base).toMatch(/^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-/);
    const runs = gpu.stages.flatMap((s) => ops(s, 'RUN')).map((r) => r.args).join('\n');
    expect(runs).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    expect(runs).toContain('libonnxruntime_providers_cuda.so');
    const env = ops(finalStage('docker/worker-gpu.Dockerfile'), 'ENV').map((e) => e.args).join(' ');
    expect(env).toContain('ORT_PROVIDER=cuda');
  });

  it('CMDs and entrypoints name files the build produces or ships', () => {
    for (const f of DOCKERFILES) {
      const last = finalStage(f);
      const cmd = jsonArgs(ops(last, 'CMD').at(-1)!.args);
      expect(cmd[0]).toBe('node');
      expect(existsSync(cmd[1]!.replace(/^dist\//, '').replace(/\.js$/, '.ts')), `${f}: ${cmd[1]}`).toBe(true);
      for (const e of ops(last, 'ENTRYPOINT')) {
        const [script] = jsonArgs(e.args);
        expect(existsSync(script!.replace(/^\/app\//, '')), `${f}: ${script}`).toBe(true);
      }
    }
  });
});

describe('compose.yaml', () => {
  const svc = compose.services;

  it('Redis keeps its data: AOF on, noeviction', () => {
    const cmd = svc.redis!.command!.join(' ');
    expect(cmd).toMatch(/--appendonly yes/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
    expect(isPinnedImage(svc.redis!.image!)).toBe(true);
    expect(isPinnedImage(svc.s3!.image!)).toBe(true);
  });

  it('has an S3 server, gateway, webhook sender and CPU worker; the GPU worker only under the gpu profile with a device reservation', () => {
    expect(Object.keys(svc)).toEqual(expect.arrayContaining(['redis', 's3', 'gateway', 'webhooks', 'worker-cpu', 'worker-gpu']));
    for (const [name, s] of Object.entries(svc)) if (name !== 'worker-gpu') expect(s.profiles, name).toBeUndefined();
    const gpu = svc['worker-gpu']!;
    expect(gpu.profiles).toEqual(['gpu']);
    const dev = gpu.deploy?.resources?.reservations?.devices?.[0];
    expect(dev).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
    expect(dev!.count).toBeGreaterThanOrEqual(1);
    expect(gpu.build?.dockerfile).toBe('docker/worker-gpu.Dockerfile');
    expect(svc['worker-cpu']!.build?.dockerfile).toBe('docker/worker-cpu.Dockerfile');
  });

  it('every long-running service has a health check; workers get a stop grace period longer than the job deadline', () => {
    for (const [name, s] of Object.entries(svc)) {
      if (name === 's3-init') continue; // one-shot
      expect(s.healthcheck?.test?.length, name).toBeGreaterThan(0);
    }
    for (const w of ['worker-cpu', 'worker-gpu']) {
      const env = svc[w]!.environment!;
      expect(seconds(svc[w]!.stop_grace_period!) * 1000, w).toBeGreaterThan(Number(env.JOB_DEADLINE_MS));
    }
  });

  it('no secrets in the file: API keys come from a compose secret, credentials from the shell', () => {
    for (const [name, s] of Object.entries(svc)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) expect(bakedSecret(k, String(v)), `${name}: ${k}`).toBeNull();
    }
    expect(svc.gateway!.secrets).toEqual(['api_keys']);
    expect(svc.webhooks!.secrets).toEqual(['api_keys']);
    expect(svc.gateway!.environment!.API_KEYS_FILE).toBe('/run/secrets/api_keys');
  });

  it("each service's environment is accepted by the processes' own config parsers", () => {
    for (const name of ['gateway', 'webhooks', 'worker-cpu', 'worker-gpu', 's3-init']) {
      const env = Object.fromEntries(Object.entries(svc[name]!.environment!).map(([k, v]) => [k, interpolate(String(v))]));
      delete env.API_KEYS_FILE; // the mounted secret file is not here
      expect(() => loadConfig(env), name).not.toThrow();
      expect(() => loadQueueSettings(env), name).not.toThrow();
    }
  });
});

describe('what the images run', () => {
  const outDir = path.resolve('.data/deploy-test/dist');
  const s3Env = () => ({
    S3_ENDPOINT: process.env.TEST_S3_ENDPOINT!, S3_FORCE_PATH_STYLE: 'true', S3_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test',
  });
  const bucket = `dk-${randomBytes(5).toString('hex')}`;
  const prefix = `dk${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    rmSync(outDir, { recursive: true, force: true });
    // The images' own build step, into a folder under the repository so node_modules resolves as in /app.
    await run('npx', ['tsc', '-p', 'docker/tsconfig.build.json', '--outDir', outDir], { timeout: 240_000 });
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    await new S3BlobStore({ bucket, region: 'us-east-1', endpoint: process.env.TEST_S3_ENDPOINT, forcePathStyle: true }).ensureBucket();
  }, 300_000);
  afterAll(() => rmSync(path.dirname(outDir), { recursive: true, force: true }));

  it('the compiled output holds every CMD the Dockerfiles run', () => {
    for (const f of DOCKERFILES) {
      const cmd = jsonArgs(ops(finalStage(f), 'CMD').at(-1)!.args);
      expect(existsSync(path.join(outDir, cmd[1]!.replace(/^dist\//, ''))), cmd[1]).toBe(true);
    }
    expect(existsSync(path.join(outDir, 'workers/webhooks/main.js'))).toBe(true);
  });

  it('the compiled gateway starts with the compose environment, passes the image health check and drains on SIGTERM', async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const composeEnv = Object.fromEntries(Object.entries(compose.services.gateway!.environment!).map(([k, v]) => [k, interpolate(String(v)) ?? '']));
    const keys = JSON.stringify([{ id: 'docker', key_sha256: hashApiKey('sk-docker-0123456789'), webhook_secret: 'whsec_ZG9ja2VyZG9ja2VyZG9ja2VyZG9ja2Vy' }]);
    const env = {
      PATH: process.env.PATH!, ...composeEnv, ...s3Env(), REDIS_URL: process.env.TEST_REDIS_URL!, S3_BUCKET: bucket,
      PORT: port, HOST: '127.0.0.1', QUEUE_PREFIX: prefix, API_KEYS_FILE: '', API_KEYS: keys, LOG_LEVEL: 'warn',
    };
    delete (env as Record<string, string>).API_KEYS_FILE;
    const child = spawn('node', [path.join(outDir, 'src/server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const until = Date.now() + 30_000;
      let ok = false;
      while (!ok && Date.now() < until) {
        ok = await run('node', ['docker/healthcheck.mjs', 'gateway'], { env: { ...process.env, PORT: port } }).then(() => true, () => false);
        if (!ok) await new Promise((r) => setTimeout(r, 300));
      }
      expect(ok, stderr).toBe(true);
      const res = await fetch(`http://127.0.0.1:${port}/v1/jobs/x`, { headers: { authorization: 'Bearer sk-docker-0123456789' } });
      expect(res.status).toBe(404); // the key from the environment authenticates
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await expect(run('node', ['docker/healthcheck.mjs', 'gateway'], { env: { ...process.env, PORT: port } })).rejects.toThrow();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('the worker health check follows this host\'s heartbeat in Redis; the redis check answers', async () => {
    const env = { ...process.env, REDIS_URL: process.env.TEST_REDIS_URL!, QUEUE_PREFIX: prefix };
    await expect(run('node', ['docker/healthcheck.mjs', 'worker'], { env })).rejects.toThrow(/no fresh heartbeat/);
    const redis = createRedis(process.env.TEST_REDIS_URL!, 'client');
    const hb = startHeartbeat(redis, prefix, { worker_id: `w-${os.hostname()}`, provider: 'cpu', model: { name: 'mvp-lm', version: 't', variant: 'paper' } }, 5_000);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const { stdout } = await run('node', ['docker/healthcheck.mjs', 'worker'], { env });
      expect(stdout).toMatch(/1 live worker/);
      await hb.stop();
      await expect(run('node', ['docker/healthcheck.mjs', 'worker'], { env })).rejects.toThrow();
      await run('node', ['docker/healthcheck.mjs', 'redis'], { env });
      await expect(run('node', ['docker/healthcheck.mjs', 'redis'], { env: { ...env, REDIS_URL: 'redis://127.0.0.1:1' } })).rejects.toThrow();
    } finally {
      await redis.quit();
    }
  });

  it('the compose stack\'s bucket init creates the bucket once and is a no-op afterwards', async () => {
    const fresh = `dk-init-${randomBytes(4).toString('hex')}`;
    const env = { ...process.env, ...s3Env(), S3_BUCKET: fresh };
    expect((await run('node', ['docker/ensure-bucket.mjs'], { env })).stdout).toMatch(/created/);
    expect((await run('node', ['docker/ensure-bucket.mjs'], { env })).stdout).toMatch(/exists/);
    const store = new S3BlobStore({ bucket: fresh, region: 'us-east-1', endpoint: process.env.TEST_S3_ENDPOINT, forcePathStyle: true });
    await store.put('probe', 'x', 'text/plain');
    expect(await store.head('probe')).toMatchObject({ size: 1 });
  });

  it('the worker entrypoint copies the bundle from an S3 prefix, then execs the command; refuses without a bundle', async () => {
    const store = new S3BlobStore({ bucket, region: 'us-east-1', endpoint: process.env.TEST_S3_ENDPOINT, forcePathStyle: true });
    const files: Record<string, string> = {
      'manifest.json': JSON.stringify({ schema_version: 1, name: 'test' }),
      'vision_encoder.onnx': 'a'.repeat(1000),
      'fp16/vision_encoder.onnx': 'b'.repeat(10),
    };
    for (const [k, v] of Object.entries(files)) await store.put(`bundles/v1/${k}`, v, 'application/octet-stream');
    await store.put('bundles/v1-other/manifest.json', '{}', 'application/json'); // a sibling prefix is not copied
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bundle-'));
    const modelDir = path.join(dir, 'current');
    const env = { ...process.env, ...s3Env(), MODEL_DIR: modelDir, MODEL_S3_URI: `s3://${bucket}/bundles/v1` };
    try {
      const { stdout } = await run('docker/worker-entrypoint.sh', ['node', '-e', 'console.log("exec:" + process.env.MODEL_DIR)'], { env });
      expect(stdout).toContain(`exec:${modelDir}`);
      expect(stdout).toMatch(/3 files/);
      for (const [k, v] of Object.entries(files)) expect(readFileSync(path.join(modelDir, k), 'utf8')).toBe(v);
      expect(readdirSync(dir)).toEqual(['current']); // no partial copy left behind
      const again = await run('docker/worker-entrypoint.sh', ['true'], { env });
      expect(again.stdout).toMatch(/already holds this bundle/);

      // A mounted bundle needs no S3; no bundle at all stops the container with a reason.
      await run('docker/worker-entrypoint.sh', ['true'], { env: { ...env, MODEL_S3_URI: '' } });
      await expect(run('docker/worker-entrypoint.sh', ['true'], { env: { ...env, MODEL_S3_URI: '', MODEL_DIR: path.join(dir, 'none') } }))
        .rejects.toThrow(/no bundle at/);
      await expect(run('docker/worker-entrypoint.sh', ['true'], { env: { ...env, MODEL_S3_URI: `s3://${bucket}/nothing/here`, MODEL_DIR: path.join(dir, 'x') } }))
        .rejects.toThrow(/no manifest.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the invariant rules themselves', () => {
  it('flag unpinned images and baked secrets, accept pinned ones and references', () => {
    for (const bad of ['node', 'node:latest', 'node:20', 'redis:alpine', 'nvidia/cuda:12-runtime']) expect(isPinnedImage(bad), bad).toBe(false);
    for (const ok of ['node:20.20.2-bookworm-slim', 'redis:7.4.2-bookworm', 'nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04', `node@sha256:${'a'.repeat(64)}`]) {
      expect(isPinnedImage(ok), ok).toBe(true);
    }
    expect(bakedSecret('AWS_SECRET_ACCESS_KEY', 'wJalrXUtnFEMI/K7MDENG')).not.toBeNull();
    expect(bakedSecret('API_KEYS', '[{"id":"a"}]')).not.toBeNull();
    expect(bakedSecret('NOTES', 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0')).not.toBeNull();
    expect(bakedSecret('REDIS_PASSWORD', 'hunter2')).not.toBeNull();
    expect(bakedSecret('AWS_SECRET_ACCESS_KEY', '${AWS_SECRET_ACCESS_KEY}')).toBeNull();
    expect(bakedSecret('API_KEYS_FILE', '/run/secrets/api_keys')).toBeNull();
    expect(bakedSecret('API_KEYS_SECRET_ID', 'arn:aws:secretsmanager:eu-west-1:1:secret:x')).toBeNull();
    expect(bakedSecret('ORT_PROVIDER', 'cuda')).toBeNull();
  });
});

// Bad images, broken bundles, CUDA requests without CUDA, cancellation: clear errors, nothing left behind.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../../contracts/task.js';
import { loadBundle } from '../../workers/pipeline/bundle.js';
import { createOnnxPipeline, type OnnxPerceptionPipeline } from '../../workers/pipeline/pipeline.js';
import { decodeImage } from '../../workers/pipeline/preprocess.js';
import { PipelineCanceled, PipelineInputError } from '../../workers/pipeline/types.js';
import { ensureBundle } from './bundles.js';
import { syntheticPng } from './images.js';

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A valid small PNG whose header claims width×height (a decompression-bomb shape). */
async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } }).png().toBuffer());
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

async function expectInputError(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const err = await decodeImage(bytes).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PipelineInputError);
  expect((err as Error).message).toMatch(pattern);
}

describe('image input errors', () => {
  it('rejects empty, corrupted and non-image bytes', async () => {
    await expectInputError(new Uint8Array(0), /empty/);
    await expectInputError(Buffer.from('definitely not an image, just some text'), /not a decodable image/);
    const noise = Buffer.alloc(4096);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251;
    await expectInputError(noise, /not a decodable image/);
  });

  it('rejects truncated JPEG and PNG files', async () => {
    const png = await syntheticPng(200, 150, 3);
    const jpeg = await sharp(png).jpeg({ quality: 90 }).toBuffer();
    await expectInputError(jpeg.subarray(0, Math.floor(jpeg.length / 2)), /corrupted or truncated/);
    await expectInputError(png.subarray(0, Math.floor(png.length / 2)), /corrupted or truncated/);
  });

  it('rejects huge pixel counts from the header, before decoding', async () => {
    await expectInputError(await pngClaiming(60_000, 60_000), /3600000000 pixels, more than the limit/);
    const ok = await syntheticPng(40, 30, 1);
    const err = await decodeImage(ok, 1000).then(() => null, (e: unknown) => e);
    expect((err as Error).message).toMatch(/40×30 = 1200 pixels, more than the limit of 1000/);
  });

  it('rejects formats outside the supported list (SVG)', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    await expectInputError(svg, /format svg is not supported/);
  });

  it('decodes odd but valid images to oriented 8-bit sRGB RGB', async () => {
    const rgba = await sharp({ create: { width: 6, height: 4, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const flat = await decodeImage(rgba);
    expect([flat.size.width, flat.size.height, flat.rgb.length]).toEqual([6, 4, 72]);
    expect(Array.from(flat.rgb.subarray(0, 3))).toEqual([255, 255, 255]); // transparent → flattened onto white

    const grey16 = await sharp(Buffer.alloc(8 * 5 * 2, 0x80), { raw: { width: 8, height: 5, channels: 1, premultiplied: false } })
      .toColourspace('grey16').png().toBuffer();
    expect((await decodeImage(grey16)).rgb.length).toBe(8 * 5 * 3);

    // EXIF orientation 6 (rotate 90° clockwise): a 30×20 stored image is 20×30 once oriented
    const rotated = await sharp(await syntheticPng(30, 20, 2)).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect((await decodeImage(rotated)).size).toEqual({ width: 20, height: 30 });

    const cmyk = await sharp(await syntheticPng(12, 9, 4)).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    expect((await decodeImage(cmyk)).rgb.length).toBe(12 * 9 * 3);

    // animated GIF: the first frame only
    const frames = Buffer.concat([Buffer.alloc(5 * 4 * 4, 255), Buffer.alloc(5 * 4 * 4, 0)]);
    const gif = await sharp(frames, { raw: { width: 5, height: 8, channels: 4 } }).gif({ loop: 0 }).toBuffer();
    const animated = await sharp(await sharp(gif, { animated: true }).toBuffer(), { animated: true }).metadata();
    expect(animated.format).toBe('gif');
    expect((await decodeImage(gif)).size).toEqual({ width: 5, height: 8 });
  });
});

describe('bundle errors', () => {
  let tmp: string;
  let source: string;
  beforeAll(() => {
    source = ensureBundle('paper');
    tmp = mkdtempSync(path.join(os.tmpdir(), 'mvp-bundle-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const copy = (name: string) => {
    const dir = path.join(tmp, name);
    cpSync(source, dir, { recursive: true });
    return dir;
  };
  const editManifest = (dir: string, edit: (m: Record<string, any>) => void) => {
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    edit(m);
    writeFileSync(file, JSON.stringify(m));
  };

  it('loads the intact bundle', async () => {
    expect((await loadBundle(source)).manifest.variant).toBe('paper');
  });

  it('names the bad manifest field', async () => {
    const wrongType = copy('wrong-type');
    editManifest(wrongType, (m) => { m.dims.hidden_size = '128'; });
    await expect(loadBundle(wrongType)).rejects.toThrow(/dims\.hidden_size: must be integer/);
    const missing = copy('missing-field');
    editManifest(missing, (m) => { delete m.templates.suffix; });
    await expect(loadBundle(missing)).rejects.toThrow(/templates: must have required property 'suffix'/);
    const extra = copy('extra-field');
    editManifest(extra, (m) => { m.postprocess.nms = true; });
    await expect(loadBundle(extra)).rejects.toThrow(/postprocess: must NOT have additional properties 'nms'/);
    const notJson = copy('not-json');
    writeFileSync(path.join(notJson, 'manifest.json'), '{ "schema_version": ');
    await expect(loadBundle(notJson)).rejects.toThrow(/manifest\.json: not valid JSON/);
  });

  it('rejects a file whose sha256 does not match, and a missing file', async () => {
    const tampered = copy('tampered');
    appendFileSync(path.join(tampered, 'tokenizer.json'), ' ');
    await expect(loadBundle(tampered)).rejects.toThrow(/tokenizer\.json: sha256 [0-9a-f]{64} does not match manifest files\.tokenizer\.json\.sha256/);
    const missing = copy('missing-graph');
    rmSync(path.join(missing, 'perception_decoder.onnx'));
    await expect(loadBundle(missing)).rejects.toThrow(/missing file perception_decoder\.onnx/);
    await expect(loadBundle(tmp)).rejects.toThrow(/no manifest\.json/);
  });

  it('fails pipeline creation with the bundle error', async () => {
    const tampered = copy('tampered-2');
    appendFileSync(path.join(tampered, 'embed_tokens.onnx'), 'x');
    await expect(createOnnxPipeline({ modelDir: tampered, provider: 'cpu' })).rejects.toThrow(/embed_tokens\.onnx: sha256/);
  }, 120_000);
});

describe('pipeline behaviour', () => {
  let pipeline: OnnxPerceptionPipeline;
  const warnings: string[] = [];
  const cudaLibs = existsSync(path.resolve('node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'));

  beforeAll(async () => {
    const logger = { info: () => undefined, warn: (_obj: object, msg?: string) => void warnings.push(msg ?? '') };
    pipeline = await createOnnxPipeline({ modelDir: ensureBundle('paper'), provider: 'cuda', deviceId: 0, logger });
  }, 120_000);
  afterAll(async () => pipeline?.close());

  it('reports the CPU fallback when CUDA is requested but unavailable', () => {
    const info = pipeline.info();
    if (cudaLibs) {
      expect(info.provider).toBe('cuda');
    } else {
      expect(info.provider).toBe('cpu');
      expect(info.fallbackReason).toMatch(/cuda|CUDA|shared library/);
      expect(warnings).toContain('CUDA execution provider unavailable; falling back to CPU');
    }
  });

  const tasks = [Task.parse({ type: 'sentence', sentence: 'the dog' }), Task.parse({ type: 'words', phrases: ['dog', 'cat'] })];
  const hooks = { onStage: () => undefined, shouldStop: () => false };

  it('turns a bad image into a PipelineInputError and keeps no job state', async () => {
    const err = await pipeline.run({ jobId: 'bad', image: Buffer.from('GIF89a broken'), tasks, caption: true }, hooks).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineInputError);
    expect((err as PipelineInputError).pointer).toBe('/image');
    expect(await pipeline.activeJobs()).toBe(0);
  }, 120_000);

  it('rejects user text that contains a reserved token', async () => {
    const image = await syntheticPng(40, 30, 9);
    const bad = [Task.parse({ type: 'words', phrases: ['dog', 'a <image> b'] })];
    const err = await pipeline.run({ jobId: 'reserved', image, tasks: bad, caption: false }, hooks).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineInputError);
    expect((err as PipelineInputError).pointer).toBe('/tasks/0/phrases/1');
  }, 120_000);

  it('stops between stages when asked, and drops the job state', async () => {
    const image = await syntheticPng(40, 30, 9);
    const seen: string[] = [];
    const err = await pipeline
      .run({ jobId: 'cancel', image, tasks, caption: true }, { onStage: (s) => void seen.push(s), shouldStop: () => seen.includes('vision') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineCanceled);
    expect((err as PipelineCanceled).stage).toBe('language');
    expect(seen).toEqual(['preprocess', 'vision']);
    expect(await pipeline.activeJobs()).toBe(0);
    const ok = await pipeline.run({ jobId: 'after-cancel', image, tasks, caption: true }, hooks);
    expect(ok.tasks).toHaveLength(2);
    expect(await pipeline.activeJobs()).toBe(0);
  }, 120_000);

  it('keeps the event loop responsive while the thread computes', async () => {
    const image = await syntheticPng(300, 200, 5);
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const t0 = performance.now();
    await pipeline.run({ jobId: 'loop', image, tasks, caption: true }, hooks);
    const took = performance.now() - t0;
    clearInterval(timer);
    // the job takes far longer than any pause of the main loop
    expect(maxGap).toBeLessThan(Math.max(100, took / 2));
  }, 120_000);
});

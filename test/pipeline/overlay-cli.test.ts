// The overlay renderer and the perceive CLI (run as a user would, through npm's tsx entry).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { PerceptionResult } from '../../contracts/result.js';
import { renderOverlay } from '../../workers/overlay/render.js';
import { encodeRle } from '../../workers/pipeline/rle.js';
import { ensureBundle } from './bundles.js';
import { syntheticPng } from './images.js';

describe('overlay', () => {
  it('tints mask pixels, leaves the rest, keeps the image size', async () => {
    const w = 64, h = 48;
    const image = await sharp({ create: { width: w, height: h, channels: 3, background: '#808080' } }).png().toBuffer();
    const mask = new Uint8Array(w * h);
    for (let y = 30; y < 40; y++) for (let x = 40; x < 60; x++) mask[y * w + x] = 1;
    const result: PerceptionResult = {
      schema_version: '1', job_id: 'j', model: { name: 'm', version: '1.0.0', variant: 'paper' }, provider: 'cpu',
      image: { width: w, height: h }, caption: 'a grey picture <with> "quotes" & ampersands',
      tasks: [{ task_index: 0, type: 'words', mode: 'instance', detections: [
        { phrase_index: 0, phrase: 'thing', score: 0.9, box: [40, 30, 60, 40], mask: encodeRle({ data: mask, height: h, width: w }), area: 200 },
      ] }],
      timings_ms: {},
    };
    const png = await renderOverlay(image, result);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([w, h]);
    const px = (x: number, y: number) => Array.from(data.subarray((y * w + x) * info.channels, (y * w + x) * info.channels + 3));
    expect(px(50, 35)).not.toEqual([128, 128, 128]); // inside the mask
    expect(px(20, 15)).toEqual([128, 128, 128]); // untouched
    const other = { ...result, image: { width: 10, height: 10 } };
    await expect(renderOverlay(image, other)).rejects.toThrow(/image is 64×48 but the result is for 10×10/);
  });
});

describe('perceive CLI', () => {
  it('prints a valid PerceptionResult and writes the overlay', async () => {
    const dir = ensureBundle('paper');
    const work = path.resolve('.data/test/cli');
    mkdirSync(work, { recursive: true });
    const img = path.join(work, 'input.png');
    writeFileSync(img, await syntheticPng(120, 80, 11));
    const overlay = path.join(work, 'overlay.png');
    const out = execFileSync(path.resolve('node_modules/.bin/tsx'), ['workers/cli/perceive.ts', img, '--words', 'red square, dog', '--stuff', 'sky', '--mode', 'panoptic', '--overlay', overlay, '--model', dir], { encoding: 'utf8', timeout: 120_000 });
    const result = PerceptionResult.parse(JSON.parse(out));
    expect(result.tasks[0]!.mode).toBe('panoptic');
    expect(result.image).toEqual({ width: 120, height: 80 });
    expect(typeof result.caption).toBe('string');
    expect((await sharp(readFileSync(overlay)).metadata()).width).toBe(120);

    const sentence = execFileSync(path.resolve('node_modules/.bin/tsx'), ['workers/cli/perceive.ts', img, '--sentence', 'the dog', '--multi', '--no-caption', '--model', dir], { encoding: 'utf8', timeout: 120_000 });
    const parsed = PerceptionResult.parse(JSON.parse(sentence));
    expect(parsed.caption).toBeNull();
    expect(parsed.tasks[0]!.mode).toBe('multi');
    expect(typeof parsed.tasks[0]!.no_target).toBe('boolean');
  }, 300_000);
});

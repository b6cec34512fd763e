// The overlay's caption band (issue 14, item 13): the caption wraps to the image width instead of running off a
// narrow image, shrinks when its lines would cover too much of the image, and never fails the overlay.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { PerceptionResult } from '../../contracts/result.js';
import { renderOverlay } from '../../workers/overlay/render.js';

const GREY = 128;
const CAPTION = 'a grey square on a grey background, photographed from above in soft light with a long and wordy caption';

function result(w: number, h: number, caption: string | null): PerceptionResult {
  return {
    schema_version: '1', job_id: 'j', model: { name: 'm', version: '1.0.0', variant: 'paper' }, provider: 'cpu',
    image: { width: w, height: h }, caption, tasks: [{ task_index: 0, type: 'words', mode: 'instance', detections: [] }], timings_ms: {},
  };
}

/** Renders the caption on a plain grey image and measures the band: the rows at the bottom darkened by it (read in
 *  column 0, inside the band's padding), and the columns where its white text lies. */
async function band(w: number, h: number, caption: string | null): Promise<{ rows: number; textLeft: number; textRight: number; textRows: number; width: number; height: number }> {
  const image = await sharp({ create: { width: w, height: h, channels: 3, background: { r: GREY, g: GREY, b: GREY } } }).png().toBuffer();
  const png = await renderOverlay(image, result(w, h, caption));
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => data[(y * info.width + x) * info.channels]!;
  let rows = 0;
  while (rows < h && px(0, h - 1 - rows) < GREY - 30) rows++;
  let textLeft = w, textRight = -1, textRows = 0;
  for (let y = h - rows; y < h; y++) {
    let lit = false;
    for (let x = 0; x < w; x++) {
      if (px(x, y) > GREY + 40) {
        lit = true;
        textLeft = Math.min(textLeft, x);
        textRight = Math.max(textRight, x);
      }
    }
    if (lit) textRows++;
  }
  return { rows, textLeft, textRight, textRows, width: info.width, height: info.height };
}

describe('overlay caption', () => {
  it('wraps a long caption on a narrow image: the band grows, the text stays inside the image with a margin', async () => {
    const wide = await band(1600, 400, CAPTION);
    const narrow = await band(120, 400, CAPTION);
    expect([narrow.width, narrow.height]).toEqual([120, 400]);
    expect(wide.rows).toBeGreaterThan(0);
    // One line on the wide image; several on the narrow one, where a single line would run ~6x past the edge.
    expect(narrow.rows).toBeGreaterThan(wide.rows * 3);
    expect(narrow.textRows).toBeGreaterThan(wide.textRows * 3);
    // The text has a margin on both sides: it was wrapped to fit, not cut at the edge.
    expect(narrow.textLeft).toBeGreaterThanOrEqual(2);
    expect(narrow.textRight).toBeLessThanOrEqual(120 - 3);
    expect(wide.textRight).toBeLessThan(1600 - 3);
  });

  it('shrinks a caption whose wrapped lines would cover more than 40% of the image', async () => {
    const long = Array.from({ length: 8 }, () => CAPTION).join(' ');
    const b = await band(100, 120, long);
    expect(b.rows).toBeGreaterThan(0);
    expect(b.rows).toBeLessThanOrEqual(Math.floor(120 * 0.4));
    expect(b.textRows).toBeGreaterThan(0);
  });

  it('keeps markup characters as text, and renders tiny images and no caption without failing', async () => {
    const b = await band(200, 100, 'a <b>bold</b> & "quoted" caption');
    expect(b.textRows).toBeGreaterThan(0);
    expect((await band(6, 6, CAPTION)).width).toBe(6);
    expect((await band(200, 100, null)).rows).toBe(0);
  });
});

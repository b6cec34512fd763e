// Overlay PNG of a perception result on its image: masks tinted in distinct colours, boxes, labels with scores and
// the caption. Used by the CLI (--overlay) and the API's overlay endpoint.
import sharp from 'sharp';
import type { PerceptionResult } from '../../contracts/result.js';
import { decodeOrientedRgb } from '../pipeline/decode.js';
import { decodeRle } from '../pipeline/rle.js';

const MASK_ALPHA = 0.45;

/** Well-separated colours: hues stepped by the golden angle. */
export function colour(i: number): [number, number, number] {
  const h = (i * 137.508) % 360;
  const s = 0.75;
  const l = 0.5;
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)))));
  return [f(0), f(8), f(4)];
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Region {
  label: string;
  mask?: import('../../contracts/result.js').Rle;
  box?: [number, number, number, number];
}

function regions(result: PerceptionResult): Region[] {
  const out: Region[] = [];
  for (const t of result.tasks) {
    for (const d of t.detections) out.push({ label: `${d.phrase} ${d.score.toFixed(2)}`, mask: d.mask, box: d.box });
    for (const s of t.semantic ?? []) out.push({ label: s.phrase, mask: s.mask });
    if (t.no_target) out.push({ label: `task ${t.task_index}: no target` });
  }
  return out;
}

export async function renderOverlay(image: Uint8Array, result: PerceptionResult): Promise<Buffer> {
  const { data, info } = await decodeOrientedRgb(image);
  const { width: w, height: h } = info;
  if (w !== result.image.width || h !== result.image.height) {
    throw new Error(`overlay: image is ${w}×${h} but the result is for ${result.image.width}×${result.image.height}`);
  }
  const items = regions(result);
  items.forEach((r, i) => {
    if (!r.mask || r.mask.size[0] !== h || r.mask.size[1] !== w) return;
    const m = decodeRle(r.mask).data;
    const [cr, cg, cb] = colour(i);
    for (let p = 0; p < m.length; p++) {
      if (m[p] === 0) continue;
      const o = p * 3;
      data[o] = Math.round(data[o]! * (1 - MASK_ALPHA) + cr * MASK_ALPHA);
      data[o + 1] = Math.round(data[o + 1]! * (1 - MASK_ALPHA) + cg * MASK_ALPHA);
      data[o + 2] = Math.round(data[o + 2]! * (1 - MASK_ALPHA) + cb * MASK_ALPHA);
    }
  });

  const font = Math.max(10, Math.round(Math.min(w, h) / 40));
  const stroke = Math.max(1, Math.round(font / 6));
  const parts: string[] = [];
  items.forEach((r, i) => {
    const rgb = `rgb(${colour(i).join(',')})`;
    if (r.box) {
      const [x0, y0, x1, y1] = r.box;
      parts.push(`<rect x="${x0}" y="${y0}" width="${Math.max(0, x1 - x0)}" height="${Math.max(0, y1 - y0)}" fill="none" stroke="${rgb}" stroke-width="${stroke}"/>`);
    }
    const [lx, ly] = r.box ? [r.box[0] + stroke, Math.max(font, r.box[1] - stroke)] : [stroke, font * (i + 2.5)];
    parts.push(`<text x="${lx}" y="${ly}" font-family="sans-serif" font-size="${font}" fill="${rgb}" stroke="black" stroke-width="${stroke / 3}" paint-order="stroke">${xml(r.label)}</text>`);
  });
  if (result.caption) {
    parts.push(`<rect x="0" y="${h - font * 1.6}" width="${w}" height="${font * 1.6}" fill="black" fill-opacity="0.6"/>`);
    parts.push(`<text x="${font / 2}" y="${h - font * 0.45}" font-family="sans-serif" font-size="${font}" fill="white">${xml(result.caption)}</text>`);
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${parts.join('')}</svg>`;
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}

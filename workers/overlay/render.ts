// Overlay PNG of a perception result on its image: masks tinted in distinct colours, boxes, labels with scores and
// the caption. Used by the CLI (--overlay) and the API's overlay endpoint.
import sharp, { type OverlayOptions } from 'sharp';
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
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${parts.join('')}</svg>`;
  const layers: OverlayOptions[] = [{ input: Buffer.from(svg), top: 0, left: 0 }];
  if (result.caption) layers.push(...(await captionLayers(result.caption, w, h, font)));
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .composite(layers)
    .png()
    .toBuffer();
}

/** The caption band may take at most this share of the image height. */
const CAPTION_MAX_SHARE = 0.4;
/** Smallest caption font (px) before words are dropped instead. */
const CAPTION_MIN_FONT = 8;

type TextImage = { data: Buffer; info: { width: number; height: number } };

/** The caption in a dark band along the bottom, wrapped to the image width (an SVG <text> is one line, cut off on
 *  narrow images). Pango lays it out at the label font size; when the lines take more than CAPTION_MAX_SHARE of
 *  the height, at smaller sizes down to CAPTION_MIN_FONT, and then with as many words as fit and an ellipsis.
 *  Best effort: a caption that cannot be laid out (an image a few pixels across) is left off rather than
 *  failing the overlay. */
async function captionLayers(caption: string, w: number, h: number, font: number): Promise<OverlayOptions[]> {
  const pad = Math.max(0, Math.min(Math.round(font / 2), Math.floor(w / 8), Math.floor(h / 8)));
  const textW = w - 2 * pad;
  const maxTextH = Math.floor(h * CAPTION_MAX_SHARE) - 2 * pad;
  if (textW < 4 || maxTextH < 4) return [];
  const layout = (text: string, size: number): Promise<TextImage> =>
    sharp({ text: { text: `<span foreground="white">${xml(text)}</span>`, font: `sans-serif ${size}`, dpi: 72, width: textW, wrap: 'word-char', rgba: true } })
      .png()
      .toBuffer({ resolveWithObject: true });
  const fits = (t: TextImage): boolean => t.info.width <= textW && t.info.height <= maxTextH;
  try {
    let text: TextImage | null = null;
    let size = font;
    for (; ; size = Math.max(CAPTION_MIN_FONT, Math.floor(size * 0.85))) {
      const t = await layout(caption, size);
      if (fits(t)) {
        text = t;
        break;
      }
      if (size <= CAPTION_MIN_FONT) break;
    }
    if (!text) {
      // The most leading words that fit at the smallest size, then an ellipsis.
      const words = caption.split(/\s+/);
      let lo = 0;
      let hi = words.length - 1;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        const t = await layout(`${words.slice(0, mid).join(' ')}…`, size);
        if (fits(t)) {
          lo = mid;
          text = t;
        } else {
          hi = mid - 1;
        }
      }
      text ??= await layout(`${words.slice(0, lo).join(' ')}…`, size);
      if (!fits(text)) return [];
    }
    const bandH = text.info.height + 2 * pad;
    return [
      { input: { create: { width: w, height: bandH, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.6 } } }, top: h - bandH, left: 0 },
      { input: text.data, top: h - bandH + pad, left: pad },
    ];
  } catch {
    return [];
  }
}

// Image → pixel_values [1,3,S,S] as model/BUNDLE.md and the reference (model/mvp_lm) define it: decode with sharp
// (decode.ts: EXIF orientation applied, sRGB, alpha flattened, first frame of animations), resize so the longer
// side is S with torch-style bilinear interpolation (half-pixel centres, no antialias — done here, not by sharp,
// whose kernels differ), pad right/bottom with the raw pad value, normalise with the manifest mean/std.
import sharp, { type Metadata } from 'sharp';
import { decodeOrientedRgb } from './decode.js';
import type { Manifest } from './manifest.js';
import { axisTaps, resizePlane, validSize, type Size } from './postprocess/geometry.js';
import { PipelineInputError } from './types.js';

export const SUPPORTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif'] as const;
/** Default limit on decoded pixels (about 7000×7000). */
export const DEFAULT_MAX_PIXELS = 50_000_000;

export interface Preprocessed {
  pixelValues: Float32Array;
  original: Size;
  valid: Size;
}

export interface DecodedImage {
  /** Interleaved RGB, 8 bits per channel. */
  rgb: Uint8Array;
  size: Size;
}

/** Decodes an uploaded image into oriented sRGB RGB bytes, or throws PipelineInputError saying why not. */
export async function decodeImage(bytes: Uint8Array, maxPixels = DEFAULT_MAX_PIXELS, pointer = '/image'): Promise<DecodedImage> {
  if (bytes.length === 0) throw new PipelineInputError('image is empty (0 bytes)', pointer);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new PipelineInputError(`image is not a decodable image (${(err as Error).message})`, pointer);
  }
  if (!meta.format || !(SUPPORTED_FORMATS as readonly string[]).includes(meta.format)) {
    throw new PipelineInputError(`image format ${meta.format ?? 'unknown'} is not supported (supported: ${SUPPORTED_FORMATS.join(', ')})`, pointer);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w < 1 || h < 1) throw new PipelineInputError(`image has no pixels (${w}×${h})`, pointer);
  if (w * h > maxPixels) {
    throw new PipelineInputError(`image is ${w}×${h} = ${w * h} pixels, more than the limit of ${maxPixels}`, pointer);
  }
  try {
    const { data, info } = await decodeOrientedRgb(bytes, { limitInputPixels: maxPixels, failOn: 'error' });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), size: { height: info.height, width: info.width } };
  } catch (err) {
    throw new PipelineInputError(`image could not be decoded: it is corrupted or truncated (${(err as Error).message})`, pointer);
  }
}

/** Resize + pad + normalise decoded RGB into planar pixel_values for an S×S frame. */
export function toPixelValues(image: DecodedImage, pre: Manifest['preprocess']): Preprocessed {
  const s = pre.image_size;
  const { height: h, width: w } = image.size;
  const valid = validSize(image.size, s);
  const rows = axisTaps(h, valid.height);
  const cols = axisTaps(w, valid.width);
  const plane = new Float32Array(h * w);
  const resized = new Float32Array(valid.height * valid.width);
  const pixelValues = new Float32Array(3 * s * s);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) plane[i] = image.rgb[i * 3 + c]!;
    const same = h === valid.height && w === valid.width;
    const src = same ? plane : resizePlane(plane, w, rows, cols, resized);
    // float32 arithmetic, as the reference does it in numpy float32
    const mean = Math.fround(pre.mean[c]!);
    const std = Math.fround(pre.std[c]!);
    const padded = Math.fround(Math.fround(pre.pad_value - mean) / std);
    const out = pixelValues.subarray(c * s * s, (c + 1) * s * s);
    out.fill(padded);
    for (let y = 0; y < valid.height; y++) {
      for (let x = 0; x < valid.width; x++) out[y * s + x] = Math.fround(src[y * valid.width + x]! - mean) / std;
    }
  }
  return { pixelValues, original: image.size, valid };
}

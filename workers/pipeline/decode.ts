// The decode of an uploaded image to RGB that results are computed on: EXIF orientation applied, sRGB, alpha
// flattened on white, first frame of animations, 8 bits per channel. The pipeline (preprocess.ts) and the overlay
// renderer (workers/overlay/render.ts) both decode through it, so overlays line up with result coordinates.
import sharp, { type OutputInfo, type SharpOptions } from 'sharp';

export type DecodeOptions = Pick<SharpOptions, 'limitInputPixels' | 'failOn'>;

export function decodeOrientedRgb(bytes: Uint8Array, options: DecodeOptions = {}): Promise<{ data: Buffer; info: OutputInfo }> {
  return sharp(bytes, { ...options, animated: false })
    .rotate() // EXIF orientation
    .toColourspace('srgb')
    .flatten({ background: '#ffffff' })
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
}

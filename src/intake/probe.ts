// Checks image bytes before anything is stored or queued: the type from the magic bytes, the dimensions
// from the header (sharp metadata, which does not decode pixels) against the pixel cap — so a
// decompression bomb is refused before it is decoded — and then one full decode to a thumbnail, so bytes
// that do not decode are refused here rather than failing in a worker.
import sharp from 'sharp';
import { ProblemError } from '../problem.js';
import { sniffImageType, SUPPORTED_TYPES, type ImageType } from './sniff.js';

export interface ImageInfo {
  contentType: ImageType;
  width: number;
  height: number;
  bytes: number;
}

const unprocessable = (slug: string, title: string, pointer: string, detail: string): ProblemError =>
  new ProblemError(422, slug, title, detail, [{ pointer, detail }]);

export async function probeImage(buf: Buffer, maxPixels: number, pointer: string): Promise<ImageInfo> {
  const contentType = sniffImageType(buf);
  if (!contentType) {
    throw unprocessable('unsupported-image-type', 'Unsupported image type', pointer,
      `the bytes are not an image in a supported format (${SUPPORTED_TYPES.join(', ')})`);
  }
  let width: number | undefined;
  let height: number | undefined;
  try {
    const meta = await sharp(buf, { limitInputPixels: false }).metadata();
    width = meta.autoOrient?.width ?? meta.width;
    height = meta.autoOrient?.height ?? meta.height;
  } catch (e) {
    throw unprocessable('image-undecodable', 'Image does not decode', pointer, `${contentType} header is not readable: ${(e as Error).message}`);
  }
  if (!width || !height) throw unprocessable('image-undecodable', 'Image does not decode', pointer, 'the image has no dimensions');
  if (width * height > maxPixels) {
    throw unprocessable('image-too-many-pixels', 'Image has too many pixels', pointer,
      `${width}x${height} is ${width * height} pixels, more than the ${maxPixels} allowed`);
  }
  try {
    await sharp(buf, { limitInputPixels: maxPixels, failOn: 'error' }).resize(16, 16, { fit: 'inside' }).raw().toBuffer();
  } catch (e) {
    throw unprocessable('image-undecodable', 'Image does not decode', pointer, `${contentType} data does not decode: ${(e as Error).message}`);
  }
  return { contentType, width, height, bytes: buf.length };
}

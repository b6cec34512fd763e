// The image type comes from the bytes, never from a file name or a declared content type.
// Only raster formats sharp decodes are accepted; SVG (scriptable, can reference URLs), PDF and the like are not.

export const SUPPORTED_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/tiff', 'image/avif'] as const;
export type ImageType = (typeof SUPPORTED_TYPES)[number];

const startsWith = (b: Buffer, sig: number[], at = 0): boolean => sig.every((v, i) => b[at + i] === v);
const ascii = (b: Buffer, at: number, s: string): boolean => b.toString('latin1', at, at + s.length) === s;

const AVIF_BRANDS = new Set(['avif', 'avis']);

/** ISO-BMFF `ftyp` box naming an AVIF brand. (HEIC needs an HEVC decoder that sharp's build lacks.) */
function sniffFtyp(b: Buffer): ImageType | null {
  if (b.length < 16 || !ascii(b, 4, 'ftyp')) return null;
  const size = Math.min(b.readUInt32BE(0), b.length);
  const brands = [b.toString('latin1', 8, 12)];
  for (let i = 16; i + 4 <= size; i += 4) brands.push(b.toString('latin1', i, i + 4));
  if (brands.some((x) => AVIF_BRANDS.has(x))) return 'image/avif';
  return null;
}

export function sniffImageType(b: Buffer): ImageType | null {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'image/webp';
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'image/gif';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'image/tiff';
  return sniffFtyp(b);
}

// Deterministic test images (shapes on noise), written with sharp.
import sharp from 'sharp';

export async function syntheticPng(width: number, height: number, seed: number): Promise<Buffer> {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const rgb = new Uint8Array(width * height * 3);
  const shapes = Array.from({ length: 3 }, () => ({
    cx: rand() * width, cy: rand() * height, r: (0.15 + rand() * 0.25) * Math.min(width, height),
    colour: [rand() * 255, rand() * 255, rand() * 255], square: rand() < 0.5,
  }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      let c = [90 + rand() * 60, 120 + rand() * 60, 160 + rand() * 60];
      for (const sh of shapes) {
        const inside = sh.square ? Math.max(Math.abs(x - sh.cx), Math.abs(y - sh.cy)) < sh.r : (x - sh.cx) ** 2 + (y - sh.cy) ** 2 < sh.r ** 2;
        if (inside) c = sh.colour;
      }
      rgb[o] = c[0]!;
      rgb[o + 1] = c[1]!;
      rgb[o + 2] = c[2]!;
    }
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

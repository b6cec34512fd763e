// Base64 image bodies: an optional data: URL prefix, standard or url-safe alphabet, whitespace ignored.
import { invalidField, ProblemError } from '../problem.js';

const POINTER = '/image/base64';
const ALPHABET = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function decodeBase64Image(text: string, maxBytes: number): Buffer {
  const body = text.replace(/^data:[\w/+.-]*;base64,/, '').replace(/\s+/g, '');
  if (!ALPHABET.test(body) || body.length % 4 === 1) throw invalidField(POINTER, 'not valid base64');
  const size = Math.floor((body.length * 3) / 4) - (body.endsWith('==') ? 2 : body.endsWith('=') ? 1 : 0);
  if (size > maxBytes) {
    throw new ProblemError(413, 'image-too-large', 'Image too large', `the image is ${size} bytes, more than the ${maxBytes} allowed`,
      [{ pointer: POINTER, detail: `more than ${maxBytes} bytes` }]);
  }
  return Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64');
}

// Reads a POST /v1/perceive body by its content type: JSON (image as base64, url or s3) or multipart
// (an `image` file part and a `request` part holding the JSON fields). Anything else is 415. Validation
// errors point into the JSON document (multipart: under /request).
import type { Context } from 'hono';
import type { AppEnv } from '../context.js';
import { readBody } from './body.js';
import { ProblemError, validationProblem, invalidField } from '../problem.js';
import { PerceiveJsonRequest, PerceiveMultipartRequest, type ImageInput, type PerceiveFields } from '../schemas/perceive.js';

export type ImageSource = { kind: 'file'; bytes: Buffer } | { kind: 'base64'; text: string } | { kind: 'url'; url: string } | { kind: 's3'; ref: string };

export interface ParsedRequest {
  fields: PerceiveFields;
  image: ImageSource;
  /** Prefix of pointers into the request fields ('' for JSON, '/request' for multipart). */
  base: string;
}

const badJson = (detail: string, pointer = ''): ProblemError =>
  new ProblemError(400, 'malformed-json', 'Malformed JSON', detail, [{ pointer, detail }]);

function parseJsonText(text: string, pointer: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badJson(`not valid JSON: ${(e as Error).message}`, pointer);
  }
}

function sourceOf(image: ImageInput): ImageSource {
  if (image.base64 !== undefined) return { kind: 'base64', text: image.base64 };
  if (image.url !== undefined) return { kind: 'url', url: image.url };
  return { kind: 's3', ref: image.s3! };
}

export async function readPerceiveRequest(c: Context<AppEnv>, maxFileBytes: number, maxBodyBytes: number): Promise<ParsedRequest> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    const r = PerceiveJsonRequest.safeParse(parseJsonText((await readBody(c, maxBodyBytes)).toString('utf8'), ''));
    if (!r.success) throw validationProblem(r.error);
    const { image, ...fields } = r.data;
    return { fields, image: sourceOf(image), base: '' };
  }
  if (type === 'multipart/form-data') {
    const body = await readBody(c, maxBodyBytes);
    let form: FormData;
    try {
      form = await new Response(new Uint8Array(body), { headers: { 'content-type': c.req.header('content-type')! } }).formData();
    } catch (e) {
      throw new ProblemError(400, 'malformed-multipart', 'Malformed multipart body', (e as Error).message);
    }
    const names = [...new Set(form.keys())];
    const unknown = names.filter((k) => k !== 'image' && k !== 'request');
    if (unknown.length) throw new ProblemError(422, 'invalid-request', 'Invalid request', 'unknown multipart parts',
      unknown.map((k) => ({ pointer: `/${k}`, detail: 'unknown part (send "image" and "request")' })));
    for (const k of names) {
      if (form.getAll(k).length > 1) throw invalidField(`/${k}`, `send exactly one "${k}" part`);
    }
    const file = form.get('image');
    if (!(file instanceof File)) throw invalidField('/image', 'send the image file as the multipart part "image"');
    if (file.size > maxFileBytes) {
      throw new ProblemError(413, 'image-too-large', 'Image too large', `the image is ${file.size} bytes, more than the ${maxFileBytes} allowed`,
        [{ pointer: '/image', detail: `more than ${maxFileBytes} bytes` }]);
    }
    const request = form.get('request');
    if (typeof request !== 'string') throw invalidField('/request', 'send the JSON fields as the multipart part "request"');
    const r = PerceiveMultipartRequest.safeParse(parseJsonText(request, '/request'));
    if (!r.success) throw validationProblem(r.error, '/request');
    return { fields: r.data, image: { kind: 'file', bytes: Buffer.from(await file.arrayBuffer()) }, base: '/request' };
  }
  throw new ProblemError(415, 'unsupported-media-type', 'Unsupported media type',
    `Content-Type ${type || '(none)'} is not accepted: send application/json or multipart/form-data`, undefined,
    { 'accept-post': 'application/json, multipart/form-data' });
}

// POST /v1/uploads: a presigned S3 PUT URL for one image. Content-Type and Content-Length are signed
// headers, so S3 refuses a PUT whose type or size differs from what was asked for here (and the size was
// checked against MAX_IMAGE_BYTES); the URL expires after UPLOAD_URL_TTL_S. The object lands under
// uploads/{key id}/{uuid}, which /v1/perceive accepts as an `s3://` image (keys under jobs/ it refuses);
// the image is still sniffed and probed there, so a wrong body is a 422 at submit, not a worker failure.
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Hono } from 'hono';
import { UPLOADS_PREFIX } from '../../lib/storage/index.js';
import type { AppDeps, AppEnv } from '../context.js';
import { readBody } from '../intake/body.js';
import { invalidField, ProblemError, validationProblem } from '../problem.js';
import { UPLOAD_URL_TTL_S, UploadRequest, type Upload } from '../schemas/uploads.js';

/** The request is a content type and a size: a few hundred bytes. Larger bodies are refused with 413. */
const UPLOAD_REQUEST_MAX_BYTES = 16 * 1024;

export function uploadRoutes({ config }: Pick<AppDeps, 'config'>): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  const storage = config.storage;
  // Its own client: the SDK's default flexible checksums would sign a CRC of the (empty) presign-time body
  // into the URL, which the real upload then fails.
  const s3 =
    storage.driver === 's3'
      ? new S3Client({ region: storage.region, endpoint: storage.endpoint, forcePathStyle: storage.forcePathStyle, requestChecksumCalculation: 'WHEN_REQUIRED' })
      : null;

  r.post('/', async (c) => {
    if (!s3) {
      throw new ProblemError(501, 'uploads-unavailable', 'Uploads unavailable',
        'presigned uploads need STORAGE_DRIVER=s3; send the image inline (multipart or base64) instead');
    }
    if ((c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/json') {
      throw new ProblemError(415, 'unsupported-media-type', 'Unsupported media type', 'send application/json', undefined,
        { 'accept-post': 'application/json' });
    }
    const text = (await readBody(c, UPLOAD_REQUEST_MAX_BYTES)).toString('utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ProblemError(400, 'malformed-json', 'Malformed JSON', `not valid JSON: ${(e as Error).message}`, [{ pointer: '', detail: 'not valid JSON' }]);
    }
    const parsed = UploadRequest.safeParse(raw);
    if (!parsed.success) throw validationProblem(parsed.error);
    const { content_type: contentType, size_bytes: size } = parsed.data;
    const max = config.limits.maxImageBytes;
    if (size > max) throw invalidField('/size_bytes', `${size} bytes is more than the ${max} allowed`, 'image-too-large');

    const key = `${UPLOADS_PREFIX}${c.var.apiKey.id}/${randomUUID()}`;
    const command = new PutObjectCommand({ Bucket: storage.bucket, Key: key, ContentType: contentType, ContentLength: size });
    const url = await getSignedUrl(s3, command, {
      expiresIn: UPLOAD_URL_TTL_S,
      signableHeaders: new Set(['content-type', 'content-length']),
    });
    const body: Upload = {
      method: 'PUT',
      url,
      headers: { 'content-type': contentType, 'content-length': String(size) },
      s3: `s3://${storage.bucket}/${key}`,
      expires_at: new Date(Date.now() + UPLOAD_URL_TTL_S * 1000).toISOString(),
    };
    c.var.log().info({ upload_key: key, bytes: size, content_type: contentType }, 'upload URL issued');
    return c.json(body, 201);
  });
  return r;
}

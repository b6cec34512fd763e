// POST /v1/uploads: request and response. A client asks for a presigned PUT URL for an image of a stated
// type and size, PUTs the bytes straight to the bucket, then submits `{ image: { s3 } }` to /v1/perceive.
// Serverless gateways cannot take large bodies (API Gateway + Lambda: ~6 MB per request), this path can.
import { SUPPORTED_TYPES } from '../intake/sniff.js';
import { z } from './zod.js';

/** Seconds a presigned upload URL stays valid. */
export const UPLOAD_URL_TTL_S = 300;

export const UploadRequest = z
  .strictObject({
    content_type: z.enum(SUPPORTED_TYPES).openapi({ description: 'The Content-Type the PUT must send (signed into the URL).' }),
    size_bytes: z.number().int().positive().openapi({
      description: 'Exact byte length of the image; the PUT must send this Content-Length (signed into the URL). At most the service\'s image size limit.',
    }),
  })
  .openapi('UploadRequest');
export type UploadRequest = z.infer<typeof UploadRequest>;

export const Upload = z
  .strictObject({
    method: z.literal('PUT'),
    url: z.string().openapi({ description: 'Presigned S3 URL. Send exactly the headers below; anything else fails the signature.' }),
    headers: z.strictObject({ 'content-type': z.string(), 'content-length': z.string() }),
    s3: z.string().openapi({ description: 'Reference to use as `image.s3` in POST /v1/perceive once the PUT succeeded.', example: 's3://uploads/uploads/alpha/0b7c….' }),
    expires_at: z.string().openapi({ description: 'When the URL stops working (ISO 8601).' }),
  })
  .openapi('Upload');
export type Upload = z.infer<typeof Upload>;

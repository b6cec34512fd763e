// POST /v1/perceive request body. Tasks reuse contracts/task.ts (the schema workers execute); this file
// adds the image reference, webhook, metadata and deadline around them. Strict objects: unknown fields are
// rejected with a pointer each.
import { WEBHOOK_EVENTS, WebhookEvent } from '../../contracts/webhook.js';
import { LIMITS, Task } from '../../contracts/task.js';
import { z } from './zod.js';

export const S3_REF = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.{1,1024})$/;

export const ImageInput = z
  .strictObject({
    base64: z.string().min(1).optional().openapi({ description: 'The image bytes, base64 (standard or url-safe alphabet); a data: URL prefix is allowed.' }),
    url: z.url({ protocol: /^https?$/ }).max(2048).optional().openapi({
      description: 'An https URL the service fetches (size and time limited; private and metadata addresses refused).',
    }),
    s3: z.string().regex(S3_REF, 'must be s3://bucket/key').optional().openapi({
      description: "An object in the service's own bucket: keys under jobs/ are reserved; uploads/{key id}/… (from POST /v1/uploads) only for that API key.",
      example: 's3://media/images/dog.jpg',
    }),
  })
  .refine((i) => [i.base64, i.url, i.s3].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of base64, url or s3',
  })
  // The refine above, in the published schema: a closed object of three optional keys with exactly one present.
  .openapi('ImageInput', { description: 'Exactly one image source. Multipart requests send the file as the `image` part instead.', minProperties: 1, maxProperties: 1 });
export type ImageInput = z.infer<typeof ImageInput>;

export const WebhookRequest = z
  .strictObject({
    url: z.url({ protocol: /^https?$/ }).max(2048).openapi({ description: 'https URL that receives Standard Webhooks-signed POSTs.' }),
    events: z.array(WebhookEvent).min(1).max(WEBHOOK_EVENTS.length).default([...WEBHOOK_EVENTS]),
  })
  .openapi('WebhookRequest');

const TaskList = z.array(Task).min(1).max(LIMITS.maxTasks);

/** Fields shared by the JSON body and the multipart `request` part. */
const commonFields = {
  tasks: TaskList,
  caption: z.boolean().default(true).openapi({ description: 'Return the caption the model writes before it perceives.' }),
  webhook: WebhookRequest.optional(),
  metadata: z
    .record(z.string().min(1).max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, 'at most 16 metadata entries')
    .optional()
    .openapi({ description: 'Up to 16 string pairs, returned on the job and in webhooks.' }),
  deadline_s: z.number().int().min(1).max(24 * 3600).optional().openapi({
    description: 'Seconds from submission after which the job expires (if not started) or is canceled at its next stage.',
  }),
};

export const PerceiveJsonRequest = z.strictObject({ image: ImageInput, ...commonFields }).openapi('PerceiveRequest');
export type PerceiveJsonRequest = z.infer<typeof PerceiveJsonRequest>;

/** The multipart `request` part: the same fields without `image` (the file is its own part). */
export const PerceiveMultipartRequest = z.strictObject(commonFields).openapi('PerceiveMultipartRequest');
export type PerceiveFields = z.infer<typeof PerceiveMultipartRequest>;

export const PerceiveMultipartBody = z
  .object({
    image: z.string().openapi({ type: 'string', format: 'binary', description: 'The image file.' }),
    // contentMediaType/contentSchema (JSON Schema 2020-12) name the schema the JSON text must match; the
    // metadata type (OpenAPI 3.0's) has neither key.
    request: z.string().openapi({
      description: 'JSON text of a PerceiveMultipartRequest (the fields of PerceiveRequest without `image`).',
      ...({ contentMediaType: 'application/json', contentSchema: { $ref: '#/components/schemas/PerceiveMultipartRequest' } } as object),
    }),
  })
  .openapi('PerceiveMultipartBody');

/** `Prefer: wait=N` (RFC 7240), N seconds ≤ 60. */
export const MAX_WAIT_S = 60;

/** Largest request body: a base64 image of the maximum size plus room for the task list. */
export function maxRequestBytes(maxImageBytes: number): number {
  return Math.ceil(maxImageBytes / 3) * 4 + 4 * 1024 * 1024;
}

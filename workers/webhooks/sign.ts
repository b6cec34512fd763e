// Standard Webhooks signing (https://www.standardwebhooks.com) with the `standardwebhooks` package:
// webhook-signature is "v1,<base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`>" under the key's whsec_ secret.
import { Webhook } from 'standardwebhooks';

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function signWebhook(secret: string, webhookId: string, at: Date, body: string): SignedHeaders {
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(webhookId, at, body),
  };
}

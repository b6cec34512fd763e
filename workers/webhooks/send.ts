// One delivery attempt: POST the signed body through the SSRF-guarded client (lib/net/fetch-limited.ts)
// with a response timeout, no redirects followed, and a small cap on the response we read.
import { fetchLimited, FetchError } from '../../lib/net/fetch-limited.js';
import type { Allowlist } from '../../lib/net/ssrf.js';
import type { WebhookAttempt } from '../../contracts/webhook.js';
import { signWebhook } from './sign.js';

const MAX_RESPONSE_BYTES = 64 * 1024;

export interface SendOptions {
  url: string;
  webhookId: string;
  body: string;
  secret: string;
  allowlist: Allowlist;
  timeoutMs: number;
}

export type SendResult = Pick<WebhookAttempt, 'outcome' | 'status_code' | 'duration_ms' | 'error'>;

export async function sendWebhook(o: SendOptions): Promise<SendResult> {
  const t0 = performance.now();
  const elapsed = (): number => Math.round(performance.now() - t0);
  try {
    const res = await fetchLimited(o.url, {
      method: 'POST',
      allowlist: o.allowlist,
      timeoutMs: o.timeoutMs,
      maxBytes: MAX_RESPONSE_BYTES,
      maxRedirects: 0,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'mvp-lm-serve-webhooks/1',
        ...signWebhook(o.secret, o.webhookId, new Date(), o.body),
      },
      body: o.body,
    });
    const base = { status_code: res.status, duration_ms: elapsed() };
    if (res.status >= 200 && res.status < 300) return { outcome: 'delivered', ...base };
    if (res.status === 410) return { outcome: 'gone', ...base, error: 'receiver answered 410 Gone: no more attempts' };
    if (res.status >= 300 && res.status < 400) {
      return { outcome: 'failed', ...base, error: `redirect to ${res.headers.location ?? '?'} not followed` };
    }
    return { outcome: 'failed', ...base, error: `receiver answered ${res.status}` };
  } catch (e) {
    if (!(e instanceof FetchError)) throw e;
    // A target the URL policy refuses will be refused on every attempt: do not retry it.
    const refused = e.code === 'ssrf_refused' || e.code === 'scheme_refused' || e.code === 'bad_url';
    return { outcome: refused ? 'refused' : 'failed', status_code: null, duration_ms: elapsed(), error: e.message };
  }
}

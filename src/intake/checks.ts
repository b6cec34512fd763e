// Request checks that depend on configuration rather than on the static schema: caps the operator set
// tighter than the contract's, and the webhook target (scheme and literal addresses; the delivery re-checks
// DNS answers through the SSRF guard at send time).
import type { Config } from '../../lib/config.js';
import { checkUrlHost, hostAllowlisted, urlPort, type Allowlist } from '../../lib/net/ssrf.js';
import { ProblemError, summarizeFieldErrors, type FieldError } from '../problem.js';
import type { PerceiveFields } from '../schemas/perceive.js';

export function checkRequestCaps(fields: PerceiveFields, limits: Config['limits'], allowlist: Allowlist, base: string): void {
  const errors: FieldError[] = [];
  if (fields.tasks.length > limits.maxTasks) {
    errors.push({ pointer: `${base}/tasks`, detail: `at most ${limits.maxTasks} tasks` });
  }
  fields.tasks.forEach((t, i) => {
    if (t.type === 'words' && t.phrases.length > limits.maxPhrases) {
      errors.push({ pointer: `${base}/tasks/${i}/phrases`, detail: `at most ${limits.maxPhrases} phrases` });
    }
  });
  if (fields.webhook) {
    const url = new URL(fields.webhook.url);
    const pointer = `${base}/webhook/url`;
    // The address class first: http://169.254.169.254/ is refused for its address, which https would not change.
    if (url.username || url.password) {
      errors.push({ pointer, detail: 'webhook URLs must not carry credentials' });
    } else {
      try {
        checkUrlHost(url, allowlist);
        if (url.protocol !== 'https:' && !hostAllowlisted(url.hostname, allowlist, urlPort(url))) {
          errors.push({ pointer, detail: `webhook URLs must use https (http to ${url.host} is not allowed)` });
        }
      } catch (e) {
        errors.push({ pointer, detail: `webhook URL refused: ${(e as Error).message}` });
      }
    }
  }
  if (errors.length) throw new ProblemError(422, 'invalid-request', 'Invalid request', summarizeFieldErrors(errors), errors);
}

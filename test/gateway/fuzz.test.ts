// Property-based fuzzing of POST /v1/perceive bodies: whatever arrives, the answer is a 4xx
// application/problem+json (or 202 for a body that happens to be valid) — never a 5xx.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHarness, png, type Harness } from './harness.js';

let h: Harness;
let image: string;

beforeAll(async () => {
  h = await openHarness();
  image = (await png(16, 16)).toString('base64');
});
afterAll(() => h.close());

async function expectClientError(body: string, mustReject: boolean): Promise<void> {
  const res = await h.post(body);
  const text = await res.text();
  expect(res.status, text).toBeLessThan(500);
  if (mustReject || res.status !== 202) {
    expect(res.status, text).toBeGreaterThanOrEqual(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = JSON.parse(text) as { status: number; type: string };
    expect(problem.status).toBe(res.status);
    expect(problem.type).toMatch(/^\/problems\//);
  }
}

const validTask = fc.oneof(
  fc.record({ type: fc.constant('words'), phrases: fc.uniqueArray(fc.stringMatching(/^[a-z]{1,8}$/), { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant('sentence'), sentence: fc.stringMatching(/^[a-z ]{0,20}[a-z]$/) }),
);

/**
 * A valid body with one thing changed: an unknown field added (always invalid: objects are strict), or a
 * field replaced by an arbitrary value (usually invalid; when it happens to be valid, 202 is right).
 */
const mutatedBody = fc
  .tuple(
    fc.array(validTask, { minLength: 1, maxLength: 3 }),
    fc.constantFrom('unknown', 'task-field', 'image-field', 'tasks', 'image', 'caption', 'webhook', 'metadata', 'deadline_s'),
    fc.anything().filter((v) => v !== undefined), // JSON.stringify would drop it
  )
  .map(([tasks, where, value]) => {
    const body: Record<string, unknown> = { image: { base64: image }, tasks };
    if (where === 'unknown') body.x_unknown = value;
    else if (where === 'task-field') (tasks[0] as Record<string, unknown>).unknown_field = value;
    else if (where === 'image-field') body.image = { base64: image, extra: value };
    else body[where] = value;
    return { body, mustReject: where === 'unknown' || where.endsWith('-field') };
  });

describe('fuzzing POST /v1/perceive', () => {
  it('arbitrary JSON values never cause a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => expectClientError(JSON.stringify(value), true)),
      { numRuns: 150 },
    );
  });

  it('valid bodies with an unknown field are 4xx problems; with a field replaced, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedBody, async ({ body, mustReject }) => expectClientError(JSON.stringify(body), mustReject)),
      { numRuns: 150 },
    );
  });

  it('arbitrary text claiming to be JSON is a 4xx problem', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 200 }), async (text) => expectClientError(text, true)),
      { numRuns: 100 },
    );
  });
});

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

/** A valid body with one thing broken: a field replaced by an arbitrary value, or an unknown field added. */
const brokenBody = fc
  .tuple(
    fc.array(validTask, { minLength: 1, maxLength: 3 }),
    fc.constantFrom('tasks', 'image', 'caption', 'webhook', 'metadata', 'deadline_s', 'task-field', 'unknown', 'image-field'),
    fc.anything(),
  )
  .map(([tasks, where, value]) => {
    const body: Record<string, unknown> = { image: { base64: image }, tasks };
    const v = value as unknown;
    switch (where) {
      case 'unknown':
        body[`x_${typeof v}`] = v;
        break;
      case 'task-field':
        (tasks[0] as Record<string, unknown>).unknown_field = v;
        break;
      case 'image-field':
        body.image = { base64: image, extra: v };
        break;
      default:
        body[where] = v;
    }
    return body;
  })
  .filter((b) => {
    // Keep only bodies that are invalid by construction: a replaced field must not accidentally be valid.
    const anyValid = (k: string, v: unknown): boolean =>
      (k === 'caption' && typeof v === 'boolean') ||
      ((k === 'metadata' || k === 'webhook' || k === 'deadline_s') && v === undefined);
    return !Object.entries(b).some(([k, v]) => anyValid(k, v));
  });

describe('fuzzing POST /v1/perceive', () => {
  it('arbitrary JSON values never cause a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => expectClientError(JSON.stringify(value), true)),
      { numRuns: 150 },
    );
  });

  it('valid bodies with one field broken or one unknown field are 4xx problems', async () => {
    await fc.assert(
      fc.asyncProperty(brokenBody, async (body) => expectClientError(JSON.stringify(body), true)),
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

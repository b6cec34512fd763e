// Problem details (RFC 9457) v1, and the problems a job can end with. Types are relative URIs under /problems/.
import { z } from 'zod';

/** `errors` carries one JSON pointer per invalid field. */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  errors: z.array(z.object({ pointer: z.string(), detail: z.string() })).optional(),
});
export type Problem = z.infer<typeof Problem>;

const problem = (slug: string, title: string, status: number, detail: string, extra: Partial<Problem> = {}): Problem => ({
  type: `/problems/${slug}`,
  title,
  status,
  detail,
  ...extra,
});

export const jobProblems = {
  canceledByUser: (stage?: string): Problem =>
    problem('job-canceled', 'Job canceled', 409, stage ? `canceled on request before stage ${stage}` : 'canceled on request'),
  deadlineExceeded: (deadline: string, stage?: string): Problem =>
    problem(
      'deadline-exceeded',
      'Deadline exceeded',
      504,
      stage ? `the deadline ${deadline} passed before stage ${stage}` : `the deadline ${deadline} passed before the job started`,
    ),
  invalidInput: (detail: string, pointer?: string): Problem =>
    problem('invalid-input', 'Invalid input', 422, detail, pointer ? { errors: [{ pointer, detail }] } : {}),
  unsupportedPayload: (detail: string): Problem => problem('unsupported-job-version', 'Unsupported job payload', 422, detail),
  inputMissing: (key: string): Problem =>
    problem('input-missing', 'Input image missing', 422, `the input image ${key} is not in storage (expired or deleted)`),
  internal: (detail: string): Problem => problem('processing-failed', 'Processing failed', 500, detail),
};

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
  /** `detail` is for the user: what failed in their terms, never an internal address or stack. */
  internal: (detail: string): Problem => problem('processing-failed', 'Processing failed', 500, detail),
  storageUnavailable: (until: 'deadline' | 'window'): Problem =>
    problem('storage-unavailable', 'Storage unavailable', 503, until === 'deadline'
      ? 'the image and result storage did not answer before the job\'s deadline; submit the job again'
      : 'the image and result storage did not answer for as long as a job may wait; submit the job again'),
};

/** Public details of the internal failures (the cause goes to the worker's log with the job and request id). */
export const PUBLIC_DETAIL = {
  processing: (attempts: number) => `the model could not process the image (${attempts} ${attempts === 1 ? 'attempt' : 'attempts'})`,
  invalidResult: 'the model produced an invalid result',
  workerLost: 'the workers processing the job stopped responding too many times',
  workerStopped: 'the worker running the job stopped responding; another worker takes it over',
  storageWait: 'the image and result storage is not answering; the job waits for it without spending attempts',
} as const;

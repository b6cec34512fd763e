// Whether an error means a backing service (storage, Redis) did not answer, as opposed to a bad request or a
// bug. The gateway answers such errors 503; a perception worker holds its job until the service is back
// instead of spending the job's attempts (workers/perception/processor.ts).

/** Storage that is there but cannot serve: the bucket is gone, or the filesystem root is missing. */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function isDependencyOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e instanceof StorageUnavailableError ||
    e.name === 'MaxRetriesPerRequestError' ||
    e.name === 'TimeoutError' ||
    e.message === 'Connection is closed.' ||
    (e.code !== undefined && NETWORK_CODES.has(e.code)) ||
    (e.$metadata?.httpStatusCode ?? 0) >= 500
  );
}

// The no-op pipeline of bench/queue-overhead.ts: it does no inference and prints, on stdout, the wall-clock
// time (µs resolution, comparable across processes on one machine) at which the worker handed it the job.
import { RESULT_SCHEMA_VERSION, type PerceptionResult } from '../contracts/result.js';
import type { PerceptionPipeline, PipelineInput } from '../workers/pipeline/types.js';

export const wallClockMs = (): number => performance.timeOrigin + performance.now();

export async function createPipeline(): Promise<PerceptionPipeline> {
  const model = { name: 'noop', version: '0', variant: 'paper' as const };
  return {
    info: () => ({ provider: 'cpu', model }),
    async run(input: PipelineInput): Promise<PerceptionResult> {
      process.stdout.write(`pipeline-start ${input.jobId} ${wallClockMs()}\n`);
      return {
        schema_version: RESULT_SCHEMA_VERSION,
        job_id: input.jobId,
        model,
        provider: 'cpu',
        image: { width: 1, height: 1 },
        caption: null,
        tasks: [],
        timings_ms: {},
      };
    },
    async close() {},
  };
}

// The narrow interface between the queue consumer (workers/perception) and the model pipeline.
// The consumer knows nothing about ONNX; the pipeline knows nothing about BullMQ, Redis or storage.
import type { Task } from '../../contracts/task.js';
import type { PerceptionResult } from '../../contracts/result.js';
import type { Stage } from '../../contracts/job.js';

export interface PipelineInput {
  jobId: string;
  image: Uint8Array;
  tasks: Task[];
  caption: boolean;
}

export interface PipelineHooks {
  /** Called when a stage starts; the consumer records it on the job. */
  onStage(stage: Stage): void | Promise<void>;
  /** Checked between stages; when true the pipeline stops with a PipelineCanceled error. */
  shouldStop(): boolean | Promise<boolean>;
}

/** The subset of a pino logger the pipeline uses (console works too). */
export interface PipelineLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface PipelineInfo {
  provider: 'cpu' | 'cuda';
  /** The graphs the pipeline runs (the ONNX pipeline says; a test pipeline need not). */
  precision?: 'fp32' | 'fp16';
  model: PerceptionResult['model'];
  /** Jobs whose stages the pipeline batches together (dynamic batching); the worker runs at least this many at once. */
  batchMax?: number;
}

export interface PerceptionPipeline {
  info(): PipelineInfo;
  run(input: PipelineInput, hooks: PipelineHooks): Promise<PerceptionResult>;
  close(): Promise<void>;
}

export class PipelineCanceled extends Error {
  constructor(readonly stage: Stage) {
    super(`canceled before stage ${stage}`);
    this.name = 'PipelineCanceled';
  }
}

/** Bad input (undecodable image, impossible request): never retried. */
export class PipelineInputError extends Error {
  constructor(message: string, readonly pointer?: string) {
    super(message);
    this.name = 'PipelineInputError';
  }
}

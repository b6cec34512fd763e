// Runs the pipeline stages for jobs on one set of ORT sessions. Lives in the pipeline thread (thread.ts); tests
// may use it in-process. Image-side state (vision outputs, the prefix+image KV cache) is computed once per job
// and reused by every task; release(jobId) drops everything a job holds.
import * as ort from 'onnxruntime-node';
import type { TaskResult } from '../../contracts/result.js';
import type { Task } from '../../contracts/task.js';
import { loadBundle, type Bundle } from './bundle.js';
import { generateInGraph, prefillImages, runLanguage, type ImagePrefix, type LanguageContext, type LanguageOutput } from './generate.js';
import { runLanguageBatch } from './language-batch.js';
import { runPerception, VISION_FOR_PERCEPTION, type VisionOutputs } from './perceive.js';
import { postprocessFrom } from './postprocess/index.js';
import { geometryFor, type Size } from './postprocess/geometry.js';
import type { PostprocessInput, RawOutputs } from './postprocess/types.js';
import { decodeImage, toPixelValues, type Preprocessed } from './preprocess.js';
import type { PrecisionChoice, PrecisionName } from './precision.js';
import { createSessions, type ModelSessions, type Provider } from './sessions.js';
import { splitRows, stack } from './tensors.js';
import { loadTokenizer } from './tokenizer.js';
import type { PipelineInfo, PipelineLogger } from './types.js';

export interface EngineConfig {
  modelDir: string;
  provider: Provider;
  deviceId?: number;
  logger?: PipelineLogger;
  /** Largest accepted image in decoded pixels. */
  maxPixels?: number;
  intraOpThreads?: number;
  /** Check every bundle file's sha256 at load (default true). */
  verifyHashes?: boolean;
  /** Decode captions with decoder_generate.onnx when the bundle has it (default true); false: the step loop. */
  generationGraph?: boolean;
  /** fp32 or fp16 graphs; default auto: fp16 on CUDA when the bundle has them (precision.ts). */
  precision?: PrecisionChoice;
}

export interface EngineInfo extends PipelineInfo {
  fallbackReason?: string;
  precision: PrecisionName;
  warmupMs: number;
  /** How captions are decoded: in one run of decoder_generate.onnx, or one decoder run per token. */
  generation: 'decoder_generate' | 'step-loop';
  /** The largest batch the bundle was tested with (manifest `batching.max_batch`; 1 without it). */
  maxBatch: number;
}

/** One task of one job in a stage call. */
export interface LanguageItem {
  jobId: string;
  taskIndex: number;
  task: Task;
  caption: boolean;
}
export type PerceptionItem = Omit<LanguageItem, 'caption'>;

/** What the host learns from a task's language stage (the tensors stay in the thread). */
export interface LanguageSummary {
  generatedIds: number[];
  caption: string | null;
  /** Phrases the perception decoder gets: with the words' background phrase; its batch group (perceive.ts). */
  numPhrases: number;
}

/** `fn` on each item in turn (the draft of a job's second task is its first task's caption). */
async function sequential<I, O>(items: I[], fn: (item: I, index: number) => Promise<O>): Promise<O[]> {
  const out: O[] = [];
  for (const [i, item] of items.entries()) out.push(await fn(item, i));
  return out;
}

interface JobState {
  pre?: Preprocessed;
  vision?: VisionOutputs;
  prefix?: ImagePrefix;
  /** The latest caption generated on this image: the draft for the next task's caption. */
  captionDraft: number[];
  language: Map<number, LanguageOutput>;
  raw: Map<number, RawOutputs>;
}

export class PipelineEngine {
  private readonly jobs = new Map<string, JobState>();
  private warmupMs = 0;

  private constructor(
    private readonly bundle: Bundle,
    private readonly models: ModelSessions,
    private readonly lang: LanguageContext,
    private readonly cfg: EngineConfig,
  ) {}

  static async create(cfg: EngineConfig): Promise<PipelineEngine> {
    const bundle = await loadBundle(cfg.modelDir, { verifyHashes: cfg.verifyHashes });
    const tokenizer = loadTokenizer(bundle.tokenizerFile);
    const models = await createSessions(bundle, cfg);
    const engine = new PipelineEngine(bundle, models, { sessions: models.sessions, manifest: bundle.manifest, tokenizer }, cfg);
    await engine.warmUp();
    return engine;
  }

  info(): EngineInfo {
    const m = this.bundle.manifest;
    return {
      provider: this.models.provider,
      precision: this.models.precision,
      model: { name: m.name, version: m.version, variant: m.variant },
      ...(this.models.fallbackReason ? { fallbackReason: this.models.fallbackReason } : {}),
      warmupMs: this.warmupMs,
      generation: this.models.sessions.decoder_generate ? 'decoder_generate' : 'step-loop',
      maxBatch: m.batching?.max_batch ?? 1,
    };
  }

  /** One synthetic job through every graph, so the first real job does not pay for lazy initialisation. */
  private async warmUp(): Promise<void> {
    const t0 = performance.now();
    const id = '__warmup__';
    const size = { height: 32, width: 48 };
    const rgb = new Uint8Array(size.height * size.width * 3).map((_, i) => (i * 37) % 256);
    const task: Task = { type: 'sentence', sentence: 'the object', mode: 'single', outputs: ['boxes', 'masks'] };
    try {
      this.state(id).pre = toPixelValues({ rgb, size }, this.bundle.manifest.preprocess);
      await this.vision([id]);
      await this.language([{ jobId: id, taskIndex: 0, task, caption: false }]);
      // the caption-off task above needs no generation: one iteration of the generation graph initialises it (from
      // a token that is no stop token, so that the loop body runs)
      const { tokens } = this.bundle.manifest;
      if (this.models.sessions.decoder_generate) await generateInGraph(this.lang, this.state(id).prefix!.past, [tokens.image], 1);
      await this.perception([{ jobId: id, taskIndex: 0, task }]);
    } finally {
      this.release(id);
    }
    this.warmupMs = performance.now() - t0;
  }

  private state(jobId: string): JobState {
    let s = this.jobs.get(jobId);
    if (!s) {
      s = { language: new Map(), raw: new Map(), captionDraft: [] };
      this.jobs.set(jobId, s);
    }
    return s;
  }

  private need<T>(value: T | undefined, what: string, jobId: string): T {
    if (value === undefined) throw new Error(`job ${jobId}: ${what} is not available (stages run out of order?)`);
    return value;
  }

  async preprocess(jobId: string, image: Uint8Array): Promise<{ original: Size; valid: Size }> {
    const decoded = await decodeImage(image, this.cfg.maxPixels);
    const pre = toPixelValues(decoded, this.bundle.manifest.preprocess);
    this.state(jobId).pre = pre;
    return { original: pre.original, valid: pre.valid };
  }

  /** vision_encoder.onnx on the jobs' images in one run, then the shared prefix + image prefill of the LLM (one run). */
  async vision(jobIds: string[]): Promise<void> {
    const states = jobIds.map((id) => this.state(id));
    const size = this.bundle.manifest.preprocess.image_size;
    const pixels = states.map((s, i) => new ort.Tensor('float32', this.need(s.pre, 'the preprocessed image', jobIds[i]!).pixelValues, [1, 3, size, size]));
    const out = await this.models.sessions.vision_encoder.run({ pixel_values: stack(pixels) });
    const rows = VISION_FOR_PERCEPTION.map((k) => [k, splitRows(out[k]!)] as const);
    const prefixes = await prefillImages(this.lang, out.image_embeds!);
    states.forEach((s, i) => {
      s.vision = Object.fromEntries(rows.map(([k, ts]) => [k, ts[i]!])) as VisionOutputs;
      s.prefix = prefixes[i]!;
    });
  }

  /**
   * The language stage of tasks of any jobs: alone, with the job's previous caption as a speculative draft
   * (generate.ts); several, in one batch (language-batch.ts) when the bundle's generation graph takes batches.
   */
  async language(items: LanguageItem[]): Promise<LanguageSummary[]> {
    const requests = items.map((it) => {
      const s = this.state(it.jobId);
      const task = it.task.type === 'words' ? { type: 'words' as const, phrases: it.task.phrases.map((p) => p.text) } : it.task;
      return { image: this.need(s.prefix, 'the image prefill', it.jobId), task, caption: it.caption, pointer: `/tasks/${it.taskIndex}` };
    });
    const outs = items.length > 1 && this.lang.sessions.decoder_generate
      ? await runLanguageBatch(this.lang, requests)
      : await sequential(requests, (r, i) => runLanguage(this.lang, r.image, r.task, r.caption, r.pointer, this.state(items[i]!.jobId).captionDraft));
    return items.map((it, i) => {
      const s = this.state(it.jobId);
      const out = outs[i]!;
      if (out.generatedIds.length > 0) s.captionDraft = out.generatedIds;
      s.language.set(it.taskIndex, out);
      return { generatedIds: out.generatedIds, caption: out.caption, numPhrases: out.numPhrases };
    });
  }

  /** perception_decoder.onnx on tasks of one kind and phrase count (perceptionGroup), any jobs, in one run. */
  async perception(items: PerceptionItem[]): Promise<void> {
    const requests = items.map((it) => {
      const s = this.state(it.jobId);
      return {
        vision: this.need(s.vision, 'the vision outputs', it.jobId),
        text: this.need(s.language.get(it.taskIndex), `the language outputs of task ${it.taskIndex}`, it.jobId),
        isSentence: it.task.type === 'sentence',
      };
    });
    const raws = await runPerception(this.models.sessions.perception_decoder, this.bundle.manifest, requests);
    items.forEach((it, i) => this.state(it.jobId).raw.set(it.taskIndex, raws[i]!));
  }

  /** What post-processing task `taskIndex` reads: sent to a post-processing thread (postprocess-pool.ts). */
  postprocessInput(jobId: string, taskIndex: number): PostprocessInput {
    const s = this.state(jobId);
    const pre = this.need(s.pre, 'the preprocessed image', jobId);
    const raw = this.need(s.raw.get(taskIndex), `the perception outputs of task ${taskIndex}`, jobId);
    const m = this.bundle.manifest;
    return { raw, geometry: geometryFor(pre.original, m.preprocess.image_size), constants: m.postprocess, numQueries: m.dims.num_queries };
  }

  /** Post-processing on this thread (warm-up, tests, benchmarks); the pipeline runs it on its post-processing threads. */
  postprocess(jobId: string, taskIndex: number, task: Task): TaskResult {
    return postprocessFrom(task, taskIndex, this.postprocessInput(jobId, taskIndex));
  }

  /** Raw perception-decoder outputs of a task (parity tests compare them with the reference). */
  rawOutputs(jobId: string, taskIndex: number): RawOutputs | undefined {
    return this.jobs.get(jobId)?.raw.get(taskIndex);
  }

  release(jobId: string): void {
    this.jobs.delete(jobId);
  }

  activeJobs(): number {
    return this.jobs.size;
  }

  async close(): Promise<void> {
    this.jobs.clear();
    await this.models.release();
  }
}

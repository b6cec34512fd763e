// The language stage of several tasks at once (dynamic batching, engine.ts). Every prompt of every task is one row:
// the rows are prefilled in one decoder run, right-padded (attention mask 0 on the padding; each row keeps its own
// positions, so padding changes no real position's result), then the rows that answer are answered together —
// captions in one run of decoder_generate.onnx, caption-off tails in one decoder run. Each task gets what
// runLanguage (generate.ts) gives it alone: the same ids, states equal to float rounding
// (test/pipeline/batching.test.ts).
import * as ort from 'onnxruntime-node';
import {
  argmaxAt,
  embed,
  generateInGraph,
  languageOutput,
  pool,
  responseOf,
  row,
  runDecoder,
  taskPrompts,
  type ImagePrefix,
  type LanguageContext,
  type LanguageOutput,
  type PromptResult,
  type StepOutput,
  type TextTask,
} from './generate.js';
import { captionFromIds, noCaptionIds, type Prompt } from './prompt.js';
import { int64Grid, pickRows, stack } from './tensors.js';

export interface LanguageRequest {
  image: ImagePrefix;
  task: TextTask;
  caption: boolean;
  /** JSON pointer of the task in the job, for input errors. */
  pointer: string;
}

interface Row {
  request: number;
  prompt: Prompt;
  respond: ReturnType<typeof responseOf>;
  /** Prompt ids after the image placeholder: what this row feeds after the image prefix. */
  ids: number[];
}

type Past = Record<string, ort.Tensor>;

function pastRows(past: Past, rows: number[]): Past {
  return Object.fromEntries(Object.entries(past).map(([name, t]) => [name, pickRows(t, rows)]));
}

/** Embeddings [N,T,H] of id rows right-padded to T with `pad`. */
async function embedRows(ctx: LanguageContext, ids: number[][], pad: number): Promise<ort.Tensor> {
  const t = Math.max(...ids.map((r) => r.length));
  const flat = ids.flatMap((r) => [...r, ...new Array<number>(t - r.length).fill(pad)]);
  const embeds = await embed(ctx, flat);
  return new ort.Tensor('float32', embeds, [ids.length, t, ctx.manifest.dims.hidden_size]);
}

/** The rows' prefill after their image prefixes (all of one length): one run, right-padded. */
async function prefillRows(ctx: LanguageContext, requests: LanguageRequest[], rows: Row[]): Promise<{ out: StepOutput; prefix: number; width: number }> {
  const prefix = requests[0]!.image.length;
  if (requests.some((r) => r.image.length !== prefix)) throw new Error('runLanguageBatch: image prefixes of different lengths');
  const inputsEmbeds = await embedRows(ctx, rows.map((r) => r.ids), ctx.manifest.tokens.pad);
  const width = inputsEmbeds.dims[1]!;
  const names = Object.keys(requests[0]!.image.past);
  const past = Object.fromEntries(names.map((n) => [n, stack(rows.map((r) => requests[r.request]!.image.past[n]!))]));
  const out = await runDecoder(ctx, {
    inputsEmbeds,
    attentionMask: int64Grid(rows.length, prefix + width, (r, c) => (c < prefix + rows[r]!.ids.length ? 1 : 0)),
    positionIds: int64Grid(rows.length, width, (_, c) => prefix + c),
  }, past);
  return { out, prefix, width };
}

/** Greedy captions of rows `which` of the prefill, in one run of decoder_generate.onnx. */
async function captions(ctx: LanguageContext, rows: Row[], which: number[], prefill: { out: StepOutput; prefix: number; width: number }) {
  const { out, prefix, width } = prefill;
  const next = which.map((i) => argmaxAt(out.logits, i * width + rows[i]!.ids.length - 1));
  const lengths = which.map((i) => prefix + rows[i]!.ids.length);
  return generateInGraph(ctx, pastRows(out.past, which), next, ctx.manifest.generation.max_new_tokens, {
    attentionMask: int64Grid(which.length, prefix + width, (r, c) => (c < lengths[r]! ? 1 : 0)),
    positions: lengths,
  });
}

/** The caption-off response and <PER> fed after rows `which` of the prefill, in one decoder run; <PER> states. */
async function noCaptionStates(ctx: LanguageContext, rows: Row[], which: number[], prefill: { out: StepOutput; prefix: number; width: number }): Promise<Float32Array[]> {
  const { out, prefix, width } = prefill;
  const tail = noCaptionIds(ctx);
  const lengths = which.map((i) => prefix + rows[i]!.ids.length);
  const tailed = await runDecoder(ctx, {
    inputsEmbeds: await embedRows(ctx, which.map(() => tail), ctx.manifest.tokens.pad),
    // the cache's padding stays masked; the tail follows it in the cache but continues each row's own positions
    attentionMask: int64Grid(which.length, prefix + width + tail.length, (r, c) => (c < lengths[r]! || c >= prefix + width ? 1 : 0)),
    positionIds: int64Grid(which.length, tail.length, (r, c) => lengths[r]! + c),
  }, pastRows(out.past, which));
  return which.map((_, r) => row(tailed.lastHidden, r * tail.length + tail.length - 1));
}

/**
 * Language outputs of several tasks (any images, kinds and lengths) in one prefill and one response run each.
 * Needs decoder_generate.onnx when a row generates a caption.
 */
export async function runLanguageBatch(ctx: LanguageContext, requests: LanguageRequest[]): Promise<LanguageOutput[]> {
  const prompts = requests.map((r) => taskPrompts(ctx, r.task, r.pointer));
  const rows: Row[] = prompts.flatMap((ps, request) =>
    ps.map((prompt, i) => ({ request, prompt, respond: responseOf(ctx, i, requests[request]!.caption), ids: prompt.inputIds.slice(prompt.imageIndex + 1) })),
  );
  const prefill = await prefillRows(ctx, requests, rows);
  const h = ctx.manifest.dims.hidden_size;
  const results: PromptResult[] = rows.map((r, i) => ({
    embeds: pool(prefill.out.hidden, r.prompt.spans, prefill.prefix, h, i),
    perHidden: null,
    generatedIds: [],
    caption: null,
  }));
  const captioned = rows.flatMap((r, i) => (r.respond === 'caption' ? [i] : []));
  if (captioned.length) {
    const responses = await captions(ctx, rows, captioned, prefill);
    captioned.forEach((i, k) => Object.assign(results[i]!, { ...responses[k]!, caption: captionFromIds(ctx, responses[k]!.generatedIds) }));
  }
  const silent = rows.flatMap((r, i) => (r.respond === 'no-caption' ? [i] : []));
  if (silent.length) {
    const states = await noCaptionStates(ctx, rows, silent, prefill);
    silent.forEach((i, k) => (results[i]!.perHidden = states[k]!));
  }
  return prompts.map((ps, request) => languageOutput(ctx, ps, results.filter((_, i) => rows[i]!.request === request)));
}

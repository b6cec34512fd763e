// The language side through embed_tokens.onnx and decoder_model_merged.onnx (model/BUNDLE.md):
// prefill, phrase/sentence pooling, greedy caption generation with the KV cache up to <PER> (paper variant),
// the caption-off path, and the single prefill of the released-code variant.
//
// The prefix (system text) and the image tokens are the same for every prompt of a job, so their KV cache is
// computed once per image (`prefillImage`) and every task's prompt continues from it.
//
// Greedy caption decoding runs in one session.run of decoder_generate.onnx (an ONNX Loop that keeps the KV cache
// inside the run: on CUDA nothing but the ids and the <PER> state comes back to the host) when the bundle has that
// graph; bundles exported before it existed take the step loop here, one decoder run per token, which feeds each
// run's present.* back as the next run's past_key_values.*. Both give the same ids (test/pipeline/generation.test.ts).
import * as ort from 'onnxruntime-node';
import type { Manifest } from './manifest.js';
import {
  captionFromIds,
  noCaptionIds,
  responseTailIds,
  sentencePrompt,
  wordPrompts,
  type Prompt,
  type PromptContext,
} from './prompt.js';
import { floats } from './precision.js';
import type { Sessions } from './sessions.js';
import { concatFloats, int64Grid, splitRows } from './tensors.js';
import type { TextTokenizer } from './tokenizer.js';

type Past = Record<string, ort.Tensor>;

export interface LanguageContext extends PromptContext {
  sessions: Sessions;
  manifest: Manifest;
  tokenizer: TextTokenizer;
}

/** KV cache of prefix + image tokens, shared by every prompt on one image. */
export interface ImagePrefix {
  past: Past;
  length: number;
}

export interface LanguageOutput {
  /** [P,H] pooled states, P = phrases (+ background for words) or 1 for a sentence. */
  textEmbeds: Float32Array;
  numPhrases: number;
  /** [H] state at <PER> (paper variant), else null. */
  perHidden: Float32Array | null;
  /** Ids chosen by greedy decoding, without the stop token (empty when no caption was generated). */
  generatedIds: number[];
  caption: string | null;
}

export interface StepOutput {
  logits: ort.Tensor;
  past: Past;
  hidden: ort.Tensor; // last_hidden_state or mean_hidden_states, [1,T,H]
  lastHidden: ort.Tensor;
}

export function int64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

export function emptyPast(m: Manifest, batch = 1): Past {
  const { num_layers: layers, num_heads: heads, head_dim: d } = m.dims;
  const past: Past = {};
  for (let i = 0; i < layers; i++) {
    for (const kind of ['key', 'value']) past[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [batch, heads, 0, d]);
  }
  return past;
}

export async function embed(ctx: LanguageContext, ids: number[]): Promise<Float32Array> {
  const out = await ctx.sessions.embed_tokens.run({ input_ids: int64(ids, [1, ids.length]) });
  return floats(out.inputs_embeds!);
}

/** The decoder's feeds besides the cache: embeddings [B,T,H], attention mask [B,past+T], position ids [B,T]. */
export interface DecoderInputs {
  inputsEmbeds: ort.Tensor;
  attentionMask: ort.Tensor;
  positionIds: ort.Tensor;
}

/** One decoder_model_merged.onnx run; its present.* come back as the next run's past. */
export async function runDecoder(ctx: LanguageContext, inputs: DecoderInputs, past: Past): Promise<StepOutput> {
  const out = await ctx.sessions.decoder_model_merged.run({
    inputs_embeds: inputs.inputsEmbeds,
    attention_mask: inputs.attentionMask,
    position_ids: inputs.positionIds,
    ...past,
  });
  const next: Past = {};
  for (const [name, value] of Object.entries(out)) {
    if (name.startsWith('present.')) next[`past_key_values.${name.slice('present.'.length)}`] = value;
  }
  const pooled = ctx.manifest.variant === 'paper' ? 'last_hidden_state' : 'mean_hidden_states';
  return { logits: out.logits!, past: next, hidden: out[pooled]!, lastHidden: out.last_hidden_state! };
}

/** One decoder run over `embeds` ([T,H] flattened) continuing after `pastLength` positions. */
export async function step(ctx: LanguageContext, embeds: Float32Array, past: Past, pastLength: number): Promise<StepOutput> {
  const h = ctx.manifest.dims.hidden_size;
  const t = embeds.length / h;
  return runDecoder(ctx, {
    inputsEmbeds: new ort.Tensor('float32', embeds, [1, t, h]),
    attentionMask: int64(new Array<number>(pastLength + t).fill(1), [1, pastLength + t]),
    positionIds: int64(Array.from({ length: t }, (_, i) => pastLength + i), [1, t]),
  }, past);
}

export function row(t: ort.Tensor, index: number): Float32Array {
  const width = t.dims[t.dims.length - 1]!;
  return floats(t, index * width, (index + 1) * width).slice();
}

/** Greedy choice after position `t` of a [1,T,V] logits tensor. */
export function argmaxAt(logits: ort.Tensor, t: number): number {
  const v = logits.dims[2]!;
  const data = floats(logits, t * v, (t + 1) * v);
  let best = 0;
  for (let i = 1; i < v; i++) if (data[i]! > data[best]!) best = i;
  return best;
}

/** The first `keep` positions of a KV cache (drops the positions of rejected draft tokens). */
function truncatePast(past: Past, keep: number): Past {
  const out: Past = {};
  for (const [name, t] of Object.entries(past)) {
    const [b, heads, length, d] = t.dims as [number, number, number, number];
    // in the graph's own dtype (float32, or float16 from an fp16 graph)
    const src = t.data as Float32Array | Uint16Array;
    const dst = src instanceof Uint16Array ? new Uint16Array(b * heads * keep * d) : new Float32Array(b * heads * keep * d);
    for (let hd = 0; hd < b * heads; hd++) dst.set(src.subarray(hd * length * d, (hd * length + keep) * d), hd * keep * d);
    out[name] = dst instanceof Uint16Array ? new ort.Tensor('float16', dst, [b, heads, keep, d]) : new ort.Tensor('float32', dst, [b, heads, keep, d]);
  }
  return out;
}

/**
 * Runs the request-independent prefix and the image tokens once per image: `imageEmbeds` [B,n,H] (vision_encoder's
 * image_embeds for B images) in one decoder run; one cache per image.
 */
export async function prefillImages(ctx: LanguageContext, imageEmbeds: ort.Tensor): Promise<ImagePrefix[]> {
  const h = ctx.manifest.dims.hidden_size;
  const b = imageEmbeds.dims[0]!;
  const prefixIds = ctx.tokenizer.encode(ctx.manifest.templates.prefix);
  const prefix = prefixIds.length ? await embed(ctx, prefixIds) : new Float32Array(0);
  const image = floats(imageEmbeds);
  const perImage = image.length / b;
  const length = (prefix.length + perImage) / h;
  const embeds = new Float32Array(b * length * h);
  for (let r = 0; r < b; r++) {
    embeds.set(prefix, r * length * h);
    embeds.set(image.subarray(r * perImage, (r + 1) * perImage), r * length * h + prefix.length);
  }
  const out = await runDecoder(ctx, {
    inputsEmbeds: new ort.Tensor('float32', embeds, [b, length, h]),
    attentionMask: int64Grid(b, length, () => 1),
    positionIds: int64Grid(b, length, (_, c) => c),
  }, emptyPast(ctx.manifest, b));
  const rows = Object.entries(out.past).map(([name, t]) => [name, splitRows(t)] as const);
  return Array.from({ length: b }, (_, r) => ({ past: Object.fromEntries(rows.map(([name, ts]) => [name, ts[r]!])), length }));
}

/** Mean of `hidden` rows over each span (spans in sequence positions, hidden starting at `offset`); `row`: the
 *  sequence of a batch [B,T,H]. */
export function pool(hidden: ort.Tensor, spans: [number, number][], offset: number, h: number, row = 0): Float32Array {
  const t = hidden.dims[1]!;
  const data = floats(hidden, row * t * h, (row + 1) * t * h);
  const out = new Float32Array(spans.length * h);
  const acc = new Float64Array(h);
  spans.forEach(([start, end], p) => {
    if (start < offset) throw new Error(`phrase span ${start}..${end} starts inside the shared image prefix`);
    acc.fill(0);
    for (let pos = start; pos < end; pos++) {
      const o = (pos - offset) * h;
      for (let k = 0; k < h; k++) acc[k]! += data[o + k]!;
    }
    for (let k = 0; k < h; k++) out[p * h + k] = acc[k]! / (end - start);
  });
  return out;
}

export interface PromptResult {
  embeds: Float32Array;
  perHidden: Float32Array | null;
  generatedIds: number[];
  caption: string | null;
}

/** The decoder state after the last position fed so far: that run's outputs and the cache length. */
export interface DecodeState {
  out: StepOutput;
  length: number;
}

/** A prompt's prefill after the shared image prefix (its `out.hidden` rows start at position `image.length`). */
export async function prefillPrompt(ctx: LanguageContext, image: ImagePrefix, prompt: Prompt): Promise<DecodeState> {
  const restIds = prompt.inputIds.slice(prompt.imageIndex + 1);
  const out = await step(ctx, await embed(ctx, restIds), image.past, image.length);
  return { out, length: image.length + restIds.length };
}

export interface Response {
  /** Ids chosen by greedy decoding, without the stop token. */
  generatedIds: number[];
  /** [H] last_hidden_state at <PER>. */
  perHidden: Float32Array;
}

/** Where each row of a (right-padded) batch cache continues: the mask of its real positions and its next position. */
export interface CacheRows {
  attentionMask: ort.Tensor;
  positions: number[];
}

/**
 * decoder_generate.onnx from a cache of B rows: greedy decoding of each row from `next[r]` (the choice after its
 * last position) until <PER>, EOS or `maxNewTokens`, then its tail (<PER>, or the response marker and <PER>), all in
 * one run. `rows` says where padded rows continue; without it the cache has no padding.
 */
export async function generateInGraph(ctx: LanguageContext, past: Past, next: number[], maxNewTokens: number, rows?: CacheRows): Promise<Response[]> {
  const session = ctx.sessions.decoder_generate;
  if (!session) throw new Error('generateInGraph: the bundle has no decoder_generate graph');
  const length = past[Object.keys(past)[0]!]!.dims[2]!;
  const { attentionMask, positions } = rows ?? { attentionMask: int64Grid(next.length, length, () => 1), positions: next.map(() => length) };
  const out = await session.run({
    input_ids: int64(next, [next.length, 1]),
    max_new_tokens: int64([maxNewTokens], [1]),
    attention_mask: attentionMask,
    position_ids: int64(positions, [positions.length, 1]),
    ...past,
  });
  const ids = out.generated_ids!;
  const width = ids.dims[1]!;
  const counts = Array.from(out.num_generated!.data as BigInt64Array, Number);
  const h = ctx.manifest.dims.hidden_size;
  const perHidden = floats(out.per_hidden!);
  return counts.map((n, r) => ({
    generatedIds: Array.from((ids.data as BigInt64Array).subarray(r * width, r * width + n), Number),
    perHidden: perHidden.slice(r * h, (r + 1) * h),
  }));
}

/**
 * Greedy caption then <PER> from the state after a prompt (BUNDLE.md "Response"): in decoder_generate.onnx when
 * the bundle has it, else the step loop. `draft`: ids generated for an earlier task on the same image.
 */
export async function greedyResponse(ctx: LanguageContext, state: DecodeState, draft: number[] = []): Promise<Response> {
  const m = ctx.manifest;
  let { out, length } = state;
  const generatedIds: number[] = [];
  // greedy decoding until <PER>, EOS or the token cap (stop tokens are not part of the caption); <PER> itself
  // is then fed to read its state, after the response marker unless the model wrote <PER> itself
  let tail = responseTailIds(ctx);
  const max = m.generation.max_new_tokens;
  let next = argmaxAt(out.logits, out.logits.dims[1]! - 1);
  // Speculative decoding with the job's previous caption as the draft: one decoder pass scores all draft
  // tokens; the longest prefix that greedy decoding would have produced anyway is accepted, so the result is
  // the greedy result, while a second task on an image usually pays one pass instead of one per token. Kept in
  // front of decoder_generate too: on the tiny bundle (CPU, 64 tokens) a fully accepted draft + the graph took
  // 9.7 ms against 19.3 ms for the graph alone, half a draft 17.4 ms (npm run bench:pipeline).
  const d = draft.slice(0, max);
  if (d.length > 0 && next === d[0]) {
    const scored = await step(ctx, await embed(ctx, d), out.past, length);
    let k = 1;
    while (k < d.length && argmaxAt(scored.logits, k - 1) === d[k]) k++;
    generatedIds.push(...d.slice(0, k));
    next = argmaxAt(scored.logits, k - 1);
    out = k === d.length ? scored : { ...scored, past: truncatePast(scored.past, length + k) };
    length += k;
  }
  if (ctx.sessions.decoder_generate) {
    const [rest] = await generateInGraph(ctx, out.past, [next], max - generatedIds.length);
    return { generatedIds: [...generatedIds, ...rest!.generatedIds], perHidden: rest!.perHidden };
  }
  while (generatedIds.length < max) {
    if (next === m.tokens.per) tail = [next];
    if (next === m.tokens.per || next === m.tokens.eos) break;
    generatedIds.push(next);
    out = await step(ctx, await embed(ctx, [next]), out.past, length);
    length += 1;
    next = argmaxAt(out.logits, 0);
  }
  out = await step(ctx, await embed(ctx, tail), out.past, length);
  return { generatedIds, perHidden: row(out.lastHidden, tail.length - 1) };
}

async function runPrompt(
  ctx: LanguageContext,
  image: ImagePrefix,
  prompt: Prompt,
  respond: 'caption' | 'no-caption' | 'none',
  draft: number[],
): Promise<PromptResult> {
  const state = await prefillPrompt(ctx, image, prompt);
  const embeds = pool(state.out.hidden, prompt.spans, image.length, ctx.manifest.dims.hidden_size);
  if (respond === 'none') return { embeds, perHidden: null, generatedIds: [], caption: null };
  if (respond === 'caption') {
    const { generatedIds, perHidden } = await greedyResponse(ctx, state, draft);
    return { embeds, perHidden, generatedIds, caption: captionFromIds(ctx, generatedIds) };
  }
  // caption off: the no-caption response and <PER> are fed right after the prompt, nothing is generated
  const tail = noCaptionIds(ctx);
  const out = await step(ctx, await embed(ctx, tail), state.out.past, state.length);
  return { embeds, perHidden: row(out.lastHidden, tail.length - 1), generatedIds: [], caption: null };
}

export type TextTask = { type: 'words'; phrases: string[] } | { type: 'sentence'; sentence: string };

/** A task's prompts: one per chunk of phrases for words, one for a sentence. */
export function taskPrompts(ctx: LanguageContext, task: TextTask, pointer: string): Prompt[] {
  return task.type === 'words' ? wordPrompts(ctx, task.phrases, `${pointer}/phrases`) : [sentencePrompt(ctx, task.sentence, `${pointer}/sentence`)];
}

/** What follows a task's prompt `index`: only the first prompt of the paper variant answers (BUNDLE.md). */
export function responseOf(ctx: LanguageContext, index: number, caption: boolean): 'caption' | 'no-caption' | 'none' {
  return ctx.manifest.variant !== 'paper' || index > 0 ? 'none' : caption ? 'caption' : 'no-caption';
}

/** A task's language outputs from its prompts' results (the first prompt's response is the task's). */
export function languageOutput(ctx: LanguageContext, prompts: Prompt[], parts: PromptResult[]): LanguageOutput {
  const first = parts[0]!;
  return {
    textEmbeds: concatFloats(parts.map((p) => p.embeds)),
    numPhrases: prompts.reduce((n, p) => n + p.spans.length, 0),
    perHidden: first.perHidden,
    generatedIds: first.generatedIds,
    caption: first.caption,
  };
}

/** Language outputs for one task: pooled text embeddings, <PER> state and caption (first chunk only). */
export async function runLanguage(
  ctx: LanguageContext,
  image: ImagePrefix,
  task: TextTask,
  caption: boolean,
  pointer: string,
  /** Caption ids generated for an earlier task on the same image: a draft for speculative decoding. */
  draft: number[] = [],
): Promise<LanguageOutput> {
  const prompts = taskPrompts(ctx, task, pointer);
  const parts: PromptResult[] = [];
  for (const [i, prompt] of prompts.entries()) parts.push(await runPrompt(ctx, image, prompt, responseOf(ctx, i, caption), draft));
  return languageOutput(ctx, prompts, parts);
}

// Prompt ids and phrase spans exactly as model/BUNDLE.md ("The language side") and model/mvp_lm/prompt.py build
// them: each text piece encoded on its own, one image placeholder, spans in the spliced sequence (the placeholder
// counts as num_image_tokens positions), end exclusive.
import type { Manifest } from './manifest.js';
import type { TextTokenizer } from './tokenizer.js';
import { PipelineInputError } from './types.js';

export interface Prompt {
  inputIds: number[];
  /** Index of the image placeholder in inputIds. */
  imageIndex: number;
  /** [start, end) per phrase in the spliced sequence (background last for word prompts that carry it). */
  spans: [number, number][];
  /** Length of the spliced sequence. */
  seqLen: number;
}

export interface PromptContext {
  manifest: Manifest;
  tokenizer: TextTokenizer;
}

/** Rejects user text containing an added token's text (e.g. "<image>"), which would encode as that token. */
function checkUserText(ctx: PromptContext, text: string, pointer: string): void {
  for (const token of ctx.tokenizer.addedTokens()) {
    if (text.includes(token)) throw new PipelineInputError(`${pointer} contains the reserved token text ${JSON.stringify(token)}`, pointer);
  }
}

function build(ctx: PromptContext, kind: 'word' | 'sentence', texts: string[]): Prompt {
  const { templates: t, tokens, variant, dims } = ctx.manifest;
  const enc = ctx.tokenizer.encode;
  const ids = enc(t.prefix);
  const imageIndex = ids.length;
  ids.push(tokens.image);
  const shift = dims.num_image_tokens - 1;
  const spans: [number, number][] = [];
  ids.push(...enc(kind === 'word' ? t.word_task : t.sentence_task));
  texts.forEach((text, i) => {
    if (i > 0) ids.push(...enc(t.phrase_separator));
    const start = ids.length;
    ids.push(...enc(text));
    if (variant === 'released-code') ids.push(tokens.seg!);
    if (ids.length === start) throw new PipelineInputError(`phrase ${JSON.stringify(text)} encodes to no tokens`);
    spans.push([start + shift, ids.length + shift]);
  });
  ids.push(...enc(t.suffix));
  return { inputIds: ids, imageIndex, spans, seqLen: ids.length + shift };
}

export function sentencePrompt(ctx: PromptContext, sentence: string, pointer: string): Prompt {
  checkUserText(ctx, sentence, pointer);
  return build(ctx, 'sentence', [sentence]);
}

/** One prompt per chunk of `generation.vocab_chunk_size` phrases; the background phrase goes with the last. */
export function wordPrompts(ctx: PromptContext, phrases: string[], pointer: string): Prompt[] {
  phrases.forEach((p, i) => checkUserText(ctx, p, `${pointer}/${i}`));
  const size = ctx.manifest.generation.vocab_chunk_size;
  const prompts: Prompt[] = [];
  for (let i = 0; i < phrases.length; i += size) {
    const chunk = phrases.slice(i, i + size);
    const last = i + size >= phrases.length;
    prompts.push(build(ctx, 'word', last ? [...chunk, ctx.manifest.templates.background_phrase] : chunk));
  }
  return prompts;
}

/** Fed when greedy decoding stopped without <PER>: the marker ids, then <PER>. */
export function responseTailIds(ctx: PromptContext): number[] {
  return [...ctx.tokenizer.encode(ctx.manifest.templates.response_marker), ctx.manifest.tokens.per];
}

/** Fed right after the prompt when no caption is wanted. */
export function noCaptionIds(ctx: PromptContext): number[] {
  return [...ctx.tokenizer.encode(ctx.manifest.templates.no_caption_response), ctx.manifest.tokens.per];
}

/** Decoded generated text cut before the response marker, trimmed. */
export function captionFromIds(ctx: PromptContext, generated: number[]): string {
  let text = ctx.tokenizer.decode(generated);
  const marker = ctx.manifest.templates.response_marker;
  if (marker && text.includes(marker)) text = text.slice(0, text.indexOf(marker));
  return text.trim();
}

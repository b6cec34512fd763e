// The bundle's Hugging Face tokenizer (tokenizer.json) through @huggingface/tokenizers.
// Every text piece is encoded on its own without special tokens (model/BUNDLE.md, "The language side").
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

export interface TextTokenizer {
  /** Ids of one text piece, without special tokens; '' encodes to []. */
  encode(piece: string): number[];
  /** Text of generated ids, special tokens skipped. */
  decode(ids: number[]): string;
  /** Contents of the added tokens (<image>, <PER>, [SEG], ...): user text must not contain them. */
  addedTokens(): string[];
}

export function loadTokenizer(file: string): TextTokenizer {
  let json: { added_tokens?: { content: string }[] };
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: cannot read tokenizer JSON: ${(err as Error).message}`);
  }
  const tok = new Tokenizer(json, {});
  const added = (json.added_tokens ?? []).map((t) => t.content);
  return {
    encode: (piece) => (piece === '' ? [] : tok.encode(piece, { add_special_tokens: false }).ids),
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
    addedTokens: () => added,
  };
}

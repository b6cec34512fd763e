// The bundle tokenizer of a model started from a Hugging Face Phi directory (`--init-llm`: the directory's
// tokenizer.json plus MVP-LM's special tokens, model/mvp_lm/pretrained.py) is read unchanged by the worker's
// tokenizer: the same ids and texts as the Python `tokenizers` library, on a tokenizer in Phi-1.5's layout
// (byte-level BPE, `<|endoftext|>`, runs of spaces as non-special added tokens; model/tests/phi_fixtures.py).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type TextTokenizer } from '../../workers/pipeline/tokenizer.js';
import { runPython } from './python.js';

const PIECES = [
  'a red square',
  'Please identify the target according to the following instruction.',
  'the  red        box    on grass',
  'dog\n\ttree',
  'café ☃ 東京',
  ' leading and trailing ',
];

interface PythonSide {
  file: string;
  added: Record<string, number>;
  encoded: number[][];
  decoded: { ids: number[]; text: string }[];
}

let dir: string;
let py: PythonSide;
let tok: TextTokenizer;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'phi-tok-'));
  const code = `
DIR = ${JSON.stringify(dir)}
import json, sys
from pathlib import Path
sys.path.insert(0, "tests")
from phi_fixtures import phi_style_tokenizer
from mvp_lm import pretrained
from mvp_lm.tokenizer import save_tokenizer
phi = Path(DIR) / "phi"
phi.mkdir()
phi_style_tokenizer().save(str(phi / "tokenizer.json"))
tok, added = pretrained.tokenizer(phi)
out = Path(DIR) / "tokenizer.json"
save_tokenizer(tok, out)
pieces = json.loads(sys.stdin.read())
encoded = [tok.encode(p, add_special_tokens=False).ids for p in pieces]
specials = list(added)
decoded = [{"ids": specials[:1] + ids + specials[1:], "text": tok.decode(specials[:1] + ids + specials[1:])} for ids in encoded]
print(json.dumps({"file": str(out), "added": {tok.id_to_token(i): i for i in added}, "encoded": encoded, "decoded": decoded}))
`;
  py = JSON.parse(runPython(code, JSON.stringify(PIECES)));
  tok = loadTokenizer(py.file);
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a tokenizer from a Phi directory, with the added special tokens', () => {
  it("appends <image>, <PER> and [SEG] after the directory's own ids, as added tokens the worker refuses in user text", () => {
    const ids = Object.values(py.added);
    expect(Object.keys(py.added)).toEqual(['<image>', '<PER>', '[SEG]']);
    expect(ids).toEqual([ids[0]!, ids[0]! + 1, ids[0]! + 2]);
    expect(tok.addedTokens()).toEqual(expect.arrayContaining(['<|endoftext|>', '<image>', '<PER>', '[SEG]', '        ']));
  });

  it('encodes every piece to the ids of the Python tokenizers library', () => {
    expect(PIECES.map((p) => tok.encode(p))).toEqual(py.encoded);
  });

  it('decodes ids around the special tokens to the same text, the special tokens skipped', () => {
    for (const { ids, text } of py.decoded) expect(tok.decode(ids)).toBe(text);
  });
});

"""A small tokenizer in Phi-1.5's layout (no download): byte-level BPE with `<|endoftext|>` as its special token
and, like Phi-1.5's ids 50257..50294, runs of spaces as non-special added tokens. Used by tests/test_pretrained.py
and by the TypeScript tokenizer test (test/pipeline/pretrained-tokenizer.test.ts)."""
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

CORPUS = ["a red square in front of the sky", "a red box on grass", "the red square", "sky", "dog", "tree"] * 20
WHITESPACE_RUNS = [" " * n for n in (8, 4, 2)]


def phi_style_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_tokens([AddedToken(w, normalized=True) for w in WHITESPACE_RUNS])
    return tok

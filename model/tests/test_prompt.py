"""Prompt ids and spans follow BUNDLE.md: pieces encoded separately, spans in spliced positions."""
import pytest
import torch

from mvp_lm.prompt import (build_prompt, build_training_ids, build_word_prompts, caption_from_ids, default_spec,
                           no_caption_ids, response_tail_ids, splice_image)
from mvp_lm.tokenizer import train_tokenizer

N_IMG = 16


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(2048, seed=0)


def enc(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


@pytest.mark.parametrize("variant", ["paper", "released-code"])
def test_word_prompt_is_the_concatenation_of_separately_encoded_pieces(tok, variant):
    spec = default_spec(tok, variant, N_IMG)
    t, k = spec.templates, spec.tokens
    p = build_prompt(tok, spec, phrases=["red circle", "dog"])
    seg = [k["seg"]] if variant == "released-code" else []
    phrase_ids = [enc(tok, "red circle") + seg, enc(tok, "dog") + seg, enc(tok, t["background_phrase"]) + seg]
    sep = enc(tok, t["phrase_separator"])
    expected = (enc(tok, t["prefix"]) + [k["image"]] + enc(tok, t["word_task"]) + phrase_ids[0] + sep
                + phrase_ids[1] + sep + phrase_ids[2] + enc(tok, t["suffix"]))
    assert p.input_ids == expected
    assert p.image_index == len(enc(tok, t["prefix"]))
    assert p.phrases == ["red circle", "dog", "background"]
    assert p.seq_len == len(expected) - 1 + N_IMG
    for (start, end), ids in zip(p.phrase_spans, phrase_ids):
        assert end - start == len(ids)
        first = start - (N_IMG - 1)  # back to an input_ids index (the span lies after the image)
        assert p.input_ids[first:first + len(ids)] == ids
        assert p.spliced_position(first) == start


def test_paper_has_no_seg_token_and_sentence_is_one_span(tok):
    spec = default_spec(tok, "paper", N_IMG)
    assert spec.tokens["seg"] is None
    p = build_prompt(tok, spec, sentence="the red circle left of the blue square")
    assert len(p.phrase_spans) == 1 and p.phrases == ["the red circle left of the blue square"]
    start, end = p.phrase_spans[0]
    ids = enc(tok, "the red circle left of the blue square")
    assert p.input_ids[start - N_IMG + 1:end - N_IMG + 1] == ids


def test_chunking_puts_background_in_the_last_chunk_only(tok):
    spec = default_spec(tok, "paper", N_IMG)
    prompts = build_word_prompts(tok, spec, ["a", "b", "c", "d", "e"], chunk_size=2)
    assert [p.phrases for p in prompts] == [["a", "b"], ["c", "d"], ["e", "background"]]
    with pytest.raises(ValueError, match="vocab_chunk_size"):
        build_word_prompts(tok, spec, ["a"], chunk_size=0)


def test_reserved_token_text_in_user_input_is_rejected(tok):
    spec = default_spec(tok, "paper", N_IMG)
    with pytest.raises(ValueError, match="phrase 'x<PER>'"):
        build_prompt(tok, spec, phrases=["dog", "x<PER>"])
    with pytest.raises(ValueError, match="sentence"):
        build_prompt(tok, spec, sentence="look at <image>")


def test_caption_is_cut_at_the_marker(tok):
    spec = default_spec(tok, "paper", N_IMG)
    gen = enc(tok, "a red circle") + enc(tok, spec.templates["response_marker"])
    assert caption_from_ids(tok, spec, gen) == "a red circle"
    assert caption_from_ids(tok, spec, enc(tok, " two dogs ")) == "two dogs"
    assert response_tail_ids(tok, spec)[-1] == spec.tokens["per"]
    assert no_caption_ids(tok, spec) == enc(tok, spec.templates["no_caption_response"]) + [spec.tokens["per"]]


def test_training_ids_label_only_the_response(tok):
    spec = default_spec(tok, "paper", N_IMG)
    prompt = build_prompt(tok, spec, phrases=["dog", "cat"])
    tr = build_training_ids(tok, spec, phrases=["dog", "cat"], caption="A dog and a cat.")
    response = enc(tok, "A dog and a cat") + response_tail_ids(tok, spec)
    assert tr.input_ids == prompt.input_ids + response
    assert tr.seq_len == prompt.seq_len + len(response) == len(tr.labels)
    assert tr.labels[:prompt.seq_len] == [-100] * prompt.seq_len
    assert tr.labels[prompt.seq_len:] == response
    assert tr.per_position == tr.seq_len - 1 and tr.labels[tr.per_position] == spec.tokens["per"]
    assert tr.phrase_spans == prompt.phrase_spans
    off = build_training_ids(tok, spec, sentence="the dog", caption=None)
    assert off.input_ids[-len(no_caption_ids(tok, spec)):] == no_caption_ids(tok, spec)
    assert set(off.labels) == {-100}  # fed, not generated: no LM loss
    released = build_training_ids(tok, default_spec(tok, "released-code", N_IMG), phrases=["dog"])
    assert released.per_position is None and set(released.labels) == {-100}


def test_splice_image_replaces_the_placeholder_row():
    emb = torch.arange(5, dtype=torch.float32).view(1, 5, 1).expand(1, 5, 2)
    img = torch.full((1, 3, 2), -1.0)
    out = splice_image(emb, img, 2)
    assert out[0, :, 0].tolist() == [0, 1, -1, -1, -1, 3, 4]

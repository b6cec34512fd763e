"""The project tokenizer: deterministic, byte-level (lossless), with the four special tokens at fixed ids."""
import pytest

from mvp_lm.tokenizer import SPECIAL_TOKENS, build_corpus, load_tokenizer, save_tokenizer, special_token_ids, \
    train_tokenizer


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(2048, seed=0)


def test_training_is_deterministic_and_reaches_the_requested_size(tok, tmp_path):
    again = train_tokenizer(2048, seed=0)
    assert again.to_str() == tok.to_str()
    assert tok.get_vocab_size() == 2048
    assert build_corpus(1) != build_corpus(0)


def test_special_tokens_have_fixed_ids_and_encode_as_one_token(tok):
    ids = special_token_ids(tok)
    assert [ids[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    enc = tok.encode("a dog<PER>[SEG]<image><|endoftext|>", add_special_tokens=False).ids
    assert enc[-4:] == [2, 3, 1, 0]


def test_byte_level_round_trip_of_unseen_text(tok):
    for text in ["the red circle left of the blue square", "Zürich straße 北京 🚲", "x\ty\n  z"]:
        assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


def test_frequent_domain_words_are_single_tokens(tok):
    for word in ["red", " circle", "person", " square", " left"]:
        assert len(tok.encode(word, add_special_tokens=False).ids) == 1, word


def test_ids_beyond_the_tokenizer_decode_to_nothing(tok):
    # the full preset pads the embedding table past the tokenizer's ids
    assert tok.decode([tok.token_to_id("red"), 51199]) == "red"


def test_save_and_load(tok, tmp_path):
    path = tmp_path / "tokenizer.json"
    save_tokenizer(tok, path)
    assert load_tokenizer(path).to_str() == tok.to_str()


def test_too_small_vocab_is_rejected():
    with pytest.raises(ValueError, match="vocab_size 100"):
        train_tokenizer(100)

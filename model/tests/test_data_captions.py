"""Caption cleaning: hedging sentences removed, length and entropy filters."""
from mvp_lm.data.captions import CaptionFilter, clean_caption, clean_captions, word_entropy


def test_hedging_sentences_are_removed_and_the_rest_kept():
    text = "A dog runs on a beach. This might indicate summer! The sea may be cold. Waves break on the sand."
    assert clean_caption(text) == "A dog runs on a beach. Waves break on the sand."
    assert clean_caption("It implies a party. It seems crowded.") is None


def test_length_and_entropy_filters():
    assert clean_caption("A dog.") is None                                # 2 words < 5
    assert clean_caption("Colorful shapes on grass.") is None             # 4 words, 2.0 bits: a template
    assert clean_caption("Two people fly a kite.") == "Two people fly a kite."  # 5 words, 2.32 bits
    assert clean_caption("dog " * 10) is None                             # entropy 0
    assert word_entropy("a b c d") == 2.0                                 # 4 equiprobable words: 2 bits
    assert clean_caption("a b a b a b") is None                           # 1 bit < 2.3
    assert clean_caption(" ".join(f"w{i}" for i in range(90))) is None   # 90 words > 80
    assert clean_caption(" ".join(f"w{i}" for i in range(90)), CaptionFilter(max_words=100)) is not None


def test_clean_captions_drops_failures_and_duplicates_in_order():
    caps = ["A red kite in a blue sky.", "grass grass grass", "A red kite in a blue sky.", "Two people fly a kite."]
    assert clean_captions(caps) == ["A red kite in a blue sky.", "Two people fly a kite."]

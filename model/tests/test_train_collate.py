import numpy as np
import torch
from PIL import Image

from mvp_lm.config import tiny
from mvp_lm.data.masks import encode_rle
from mvp_lm.data.record import Phrase, Target
from mvp_lm.data.sampler import Sample
from mvp_lm.prompt import default_spec, splice_image
from mvp_lm.tokenizer import train_tokenizer
from mvp_lm.train.collate import collate, make_item, mask_in_frame, preprocess_image, sample_targets

CFG = tiny()  # image_size 128, mask_size 32


def test_preprocess_resizes_longer_side_pads_with_raw_128_and_normalises():
    image = Image.new("RGB", (100, 50), (10, 20, 30))  # w=100, h=50 -> 128×64
    px = preprocess_image(image, CFG)
    mean, std = torch.tensor(CFG.preprocess.mean), torch.tensor(CFG.preprocess.std)
    assert px.shape == (3, 128, 128)
    torch.testing.assert_close(px[:, :64, :].mean((1, 2)), (torch.tensor([10.0, 20.0, 30.0]) - mean) / std)
    torch.testing.assert_close(px[:, 64:, :].mean((1, 2)), (128.0 - mean) / std)  # padding is not 0 after normalising


def test_mask_coverage_is_fractional_at_a_soft_edge():
    mask = np.zeros((4, 256), bool)  # 4×256 -> valid 2×128 (rows 0-1 of the frame, all in mask row 0)
    mask[:, :130] = True
    frame = mask_in_frame(mask, CFG)
    assert frame[1:].sum() == 0 and frame[0, :16].tolist() == [0.5] * 16  # 2 of the cell's 4 rows are image
    assert 0 < frame[0, 16].item() < 0.5 and frame[0, 17:].sum() == 0


def test_masks_and_boxes_land_in_the_padded_frame():
    h, w = 128, 256  # scale 0.5 -> 64×128 valid region of the 128² frame
    mask = np.zeros((h, w), bool)
    mask[:, : w // 2] = True  # left half of the image
    frame = mask_in_frame(mask, CFG)
    expected = np.zeros((32, 32), np.float32)
    expected[:16, :16] = 1.0
    torch.testing.assert_close(frame, torch.from_numpy(expected))  # scale 0.5: half-pixel bilinear stays binary
    sample = Sample("r", "x.png", h, w, "words", "instance", "", [Phrase("a"), Phrase("b")],
                    [Target(1, [64, 32, 192, 96], encode_rle(mask)), Target(0, [0, 0, 10, 10], None)], None)
    t = sample_targets(sample, CFG)
    torch.testing.assert_close(t.boxes[0], torch.tensor([0.5, 0.25, 0.5, 0.25]))  # xyxy/256 -> cxcywh
    assert t.labels.tolist() == [1, 0] and t.has_mask.tolist() == [True, False]
    assert t.masks.shape == (2, 32, 32) and t.masks[1].sum() == 0
    torch.testing.assert_close(t.masks[0], frame)


def test_items_collate_into_padded_spliced_batch(tmp_path):
    tok = train_tokenizer(600)
    spec = default_spec(tok, "paper", CFG.num_image_tokens)
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    words = Sample("w", "a.png", 48, 64, "words", "detection", "", [Phrase("cat"), Phrase("dog")],
                   [Target(1, [0, 0, 32, 24])], "a dog")
    sentence = Sample("s", "a.png", 48, 64, "sentence", "multi", "", [Phrase("the big dog on the left")], [], None)
    items = [make_item(words, tmp_path, tok, spec, CFG), make_item(sentence, tmp_path, tok, spec, CFG)]
    batch = collate(items, pad_id=spec.tokens["pad"])
    seq = [len(it.input_ids) - 1 + CFG.num_image_tokens for it in items]
    assert batch.attention_mask.sum(1).tolist() == seq
    assert batch.labels.shape == batch.attention_mask.shape == batch.position_ids.shape
    # both responses end with <PER> at per_position; only the caption response (words) is trained, the
    # caption-off one (sentence, no caption) is fed without LM loss
    for b, it in enumerate(items):
        assert it.input_ids[-1] == spec.tokens["per"] and it.per_position == seq[b] - 1
        trained = batch.labels[b][batch.labels[b] != -100]
        if b == 0:
            assert trained[-1].item() == spec.tokens["per"]
        else:
            assert trained.numel() == 0
        assert (batch.labels[b, seq[b]:] == -100).all()
    embeds = splice_image(torch.zeros(2, batch.input_ids.shape[1], 4), torch.ones(2, CFG.num_image_tokens, 4),
                          batch.image_index)
    assert embeds.shape[1] == batch.labels.shape[1]
    assert len(batch.phrase_spans[0]) == 3 and len(batch.phrase_spans[1]) == 1  # cat, dog, background | sentence
    assert len(batch.targets[1]) == 0 and batch.targets[0].labels.tolist() == [1]

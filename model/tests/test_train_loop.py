"""End-to-end training on the tiny preset: the loss falls on repeated samples, and a resumed run continues
exactly like an uninterrupted one."""
import json

import pytest
import torch

from mvp_lm.tokenizer import save_tokenizer, train_tokenizer
from mvp_lm.train.__main__ import parse_args
from mvp_lm.train.loop import train
from train_fixtures import write_synthetic_set

STEPS = 6


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    data = write_synthetic_set(root, num_images=1)
    save_tokenizer(train_tokenizer(600), root / "tokenizer.json")
    return root, data


def options(dataset, out, *extra):
    root, data = dataset
    return parse_args(["--data", str(data), "--images", str(root), "--out", str(out), "--config", "tiny",
                       "--stage", "2", "--steps", str(STEPS), "--batch-size", "2", "--tokenizer",
                       str(root / "tokenizer.json"), "--no-progress", "--save-every", "1000", *extra])


@pytest.fixture(scope="module")
def uninterrupted(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_full")
    return out, train(options(dataset, out))


def test_loss_goes_down_on_repeated_samples(uninterrupted):
    out, result = uninterrupted
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1)) == [r["step"] for r in result.rows]
    first, last = rows[0], rows[-1]
    assert last["loss"] < 0.75 * first["loss"]
    for key in ("lm", "mask", "dice"):  # each part learns, not just one dominant term
        assert last[key] < first[key]
    assert {"lm", "cls", "mask", "dice", "l1", "giou", "lr", "grad_norm"} <= set(first)
    assert (out / "checkpoint.pt").exists() and (out / "config.json").exists()


def test_resume_reproduces_the_uninterrupted_run(dataset, uninterrupted, tmp_path):
    _, full = uninterrupted
    first = train(options(dataset, tmp_path, "--stop-after", "3"))
    assert first.step == 3 and len(first.rows) == 3
    second = train(options(dataset, tmp_path, "--resume"))
    assert [r["step"] for r in second.rows] == [4, 5, 6]
    for got, want in zip(first.rows + second.rows, full.rows):
        for key in ("loss", "lm", "cls", "mask", "dice", "l1", "giou", "lr"):
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), (got["step"], key)
    full_state, resumed_state = full.model.state_dict(), second.model.state_dict()
    for name, value in full_state.items():
        torch.testing.assert_close(resumed_state[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_resume_refuses_changed_data_stream_options(dataset, uninterrupted):
    out, _ = uninterrupted
    with pytest.raises(ValueError, match="--batch-size 2 -> 1"):
        train(options(dataset, out, "--resume", "--batch-size", "1"))


def test_stage1_trains_only_the_connector(dataset, tmp_path):
    result = train(options(dataset, tmp_path, "--stage", "1", "--steps", "1"))
    trainable = {n.split(".")[0] for n, p in result.model.named_parameters() if p.requires_grad}
    assert trainable == {"connector"}
    assert result.rows[0]["mask"] == 0 and result.rows[0]["lm"] > 0  # alignment: LM loss only


def test_stage2_freezes_only_the_image_encoder():
    from mvp_lm.config import tiny
    from mvp_lm.model import MVPLM
    from mvp_lm.train.loop import set_trainable

    model = MVPLM(tiny())
    set_trainable(model, 2)
    frozen = {n.split(".")[0] for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert frozen == {"swin"}
    assert {"connector", "phi", "pixel_decoder", "decoder", "heads", "query_gen", "phrase_projector"} <= trainable
    set_trainable(model, 2, train_encoder=True)  # a from-scratch encoder (the demo model) trains too
    assert all(p.requires_grad for p in model.parameters())
    set_trainable(model, 1, train_encoder=True)  # stage 1 stays connector-only
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"connector"}

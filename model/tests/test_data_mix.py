"""python -m mvp_lm.data.mix on the converter fixtures in their datasets' standard layouts, and the trainer's
draws from the mix: datasets in the manifest's ratios, no record twice within a pass, resumable."""
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mix_fixtures import arrange_datasets
from mvp_lm.data.mix import main as mix_main
from mvp_lm.data.mix_manifest import read_mix
from mvp_lm.data.record import read_categories, read_jsonl
from mvp_lm.train.dataset import MixedBatches, training_batches


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("datasets")
    return root, arrange_datasets(root)


def flag_value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def without(args: list[str], *flags: str) -> list[str]:
    out, skip = [], False
    for a in args:
        if a in flags:
            skip = True
        elif skip:
            skip = False
        else:
            out.append(a)
    return out


def test_mix_of_every_dataset(folders, tmp_path, capsys):
    root, args = folders
    out = tmp_path / "train.jsonl"
    assert mix_main(args + ["--out", str(out), "--no-progress"]) == 0
    records = read_jsonl(out)
    assert Counter(r.source for r in records) == {"coco_panoptic": 2, "objects365": 1, "refcoco": 2, "refcoco+": 2,
                                                  "grefcoco": 1, "goldg_mixed": 1, "goldg_flickr": 1}
    assert len({r.id for r in records}) == len(records)
    for r in records:  # image paths are relative to the common root and point at the right folder
        assert (root / r.image).is_file(), r.image
    by_source = {r.source: r for r in records}
    assert by_source["coco_panoptic"].image.startswith("coco/val/")
    assert by_source["refcoco+"].image == "coco/train2014/COCO_train2014_000000000020.jpg"
    assert by_source["goldg_flickr"].image.startswith("goldg/flickr30k/flickr30k_images/train/")
    assert records[0].captions  # COCO panoptic image 1's captions, found in annotations/ by default
    assert set(read_categories(out)) == {"coco_panoptic", "objects365"}
    groups = read_mix(out)
    assert [(g.name, g.sources, g.records) for g in groups] == [
        ("coco_panoptic", ("coco_panoptic",), 2), ("objects365", ("objects365",), 1),
        ("refcoco", ("refcoco", "refcoco+"), 4), ("grefcoco", ("grefcoco",), 1),
        ("goldg", ("goldg_mixed", "goldg_flickr"), 2)]
    ratios = {g.name: g.ratio for g in groups}
    total = 33.3 + 16.7 + 33.3 + 8.3 + 16.7  # the defaults: paper Table 2 and ours for gRefCOCO
    assert ratios == pytest.approx({"coco_panoptic": 33.3 / total, "objects365": 16.7 / total,
                                    "refcoco": 33.3 / total, "grefcoco": 8.3 / total, "goldg": 16.7 / total})
    assert json.loads((tmp_path / "train.mix.json").read_text())["images_root"] == str(root.resolve())
    assert f"--images {root.resolve()}" in capsys.readouterr().out


def test_missing_datasets_renormalise_the_paper_ratios_and_say_so(folders, tmp_path, capsys):
    _, args = folders
    out = tmp_path / "train.jsonl"
    args = without(args, "--objects365", "--goldg", "--grefcoco")
    assert mix_main(args + ["--out", str(out), "--no-progress"]) == 0
    assert {g.name: g.ratio for g in read_mix(out)} == pytest.approx({"coco_panoptic": 0.5, "refcoco": 0.5})
    log = capsys.readouterr().out
    assert "objects365 left out (no folder given)" in log and "goldg left out (no folder given)" in log
    assert "renormalised" in log


def test_paper_ratios_exactly_when_the_four_paper_datasets_are_given(folders, tmp_path, capsys):
    _, args = folders
    out = tmp_path / "train.jsonl"
    assert mix_main(without(args, "--grefcoco") + ["--out", str(out), "--no-progress"]) == 0
    assert {g.name: g.ratio for g in read_mix(out)} == pytest.approx(
        {"coco_panoptic": 1 / 3, "objects365": 1 / 6, "refcoco": 1 / 3, "goldg": 1 / 6}, abs=1e-3)
    assert "(paper Table 2)" in capsys.readouterr().out


def test_ratio_options_and_zero_leaves_a_dataset_out(folders, tmp_path):
    _, args = folders
    out = tmp_path / "train.jsonl"
    assert mix_main(args + ["--ratio", "objects365=0", "--ratio", "grefcoco=33.3", "--ratio", "goldg=33.3",
                            "--out", str(out), "--no-progress"]) == 0
    assert {g.name: g.ratio for g in read_mix(out)} == pytest.approx(
        {"coco_panoptic": 0.25, "refcoco": 0.25, "grefcoco": 0.25, "goldg": 0.25})
    assert "objects365" not in {r.source for r in read_jsonl(out)}
    for bad in ("coco=1", "goldg", "goldg=-1", "goldg=x"):
        with pytest.raises(SystemExit):
            mix_main(args + ["--ratio", bad, "--out", str(out)])


def test_a_missing_file_is_named(folders, tmp_path, capsys):
    _, args = folders
    refer = Path(flag_value(args, "--refcoco"))
    broken = tmp_path / "refcoco"
    broken.mkdir()
    (broken / "instances.json").write_text((refer / "instances.json").read_text())
    args = without(args, "--refcoco") + ["--refcoco", str(broken)]
    assert mix_main(args + ["--out", str(tmp_path / "t.jsonl")]) == 2
    assert f"{broken / 'refs(unc).p'} is missing" in capsys.readouterr().err
    args = without(args, "--refcoco", "--coco-train2014") + ["--refcoco", str(refer)]
    assert mix_main(args + ["--out", str(tmp_path / "t.jsonl")]) == 2
    assert "--refcoco needs --coco-train2014 DIR" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


def test_the_trainer_draws_the_mix_in_its_ratios(folders, tmp_path):
    """The trainer's own path (training_batches on the written JSONL + manifest), 2 ranks × 4 × 1,500 steps."""
    _, args = folders
    out = tmp_path / "train.jsonl"
    weights = {"coco_panoptic": 5, "objects365": 1, "refcoco": 2, "grefcoco": 1, "goldg": 1}
    assert mix_main(args + [f"--ratio={k}={v}" for k, v in weights.items()] + ["--out", str(out), "--no-progress"]) == 0
    records = read_jsonl(out)
    group_of = {s: g.name for g in read_mix(out) for s in g.sources}
    drawn = Counter()
    for rank in range(2):
        batches, described = training_batches(out, records, 4, 2, rank, 0, 0, 1500, 1500)
        drawn.update(group_of[records[i].source] for batch in batches for _, i in batch)
        assert described.startswith("data: mix of coco_panoptic 50.0% (2 records)")
    n = sum(drawn.values())
    assert n == 2 * 4 * 1500
    for name, w in weights.items():  # 12,000 draws: the binomial sd is <= 0.5 points
        assert drawn[name] / n == pytest.approx(w / 10, abs=0.02), name


def test_mixed_batches_pass_through_each_group_before_repeating_and_resume_exactly():
    groups = [np.arange(0, 7), np.arange(7, 107)]
    def run(rank, start, end):
        return list(MixedBatches(groups, [0.3, 0.7], 3, 2, rank, 5, start, end, 200))
    draws = [run(r, 0, 200) for r in range(2)]
    for g in groups:  # within one pass of a group no record is drawn twice, over both ranks
        seen = Counter(key for d in draws for batch in d for key in batch if key[1] in g)
        assert max(seen.values()) == 1
        first_pass = {i for (p, i) in seen if p == 0}
        if any(p > 0 for p, _ in seen):
            assert first_pass == set(g.tolist())
    assert run(1, 77, 200) == draws[1][77:]  # a resumed run draws what the uninterrupted one did
    assert run(1, 0, 50) == draws[1][:50]  # --stop-after does not change the draws

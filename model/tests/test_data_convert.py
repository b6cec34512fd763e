"""Each converter on a fixture in its dataset's own format (tests/fixtures/, written by make_fixtures.py), the
CLI, and errors that name the file, the record and the field."""
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from mvp_lm.data.convert import coco_detection, coco_panoptic, goldg, grefcoco, refcoco
from mvp_lm.data.convert.__main__ import main as convert_main
from mvp_lm.data.errors import DataFormatError
from mvp_lm.data.masks import decode_segmentation
from mvp_lm.data.record import Phrase, read_categories, read_jsonl

FIX = Path(__file__).parent / "fixtures"
PAN = FIX / "coco_panoptic"


def mask(target, rec):
    return decode_segmentation(target.segmentation, rec.height, rec.width)


def test_coco_panoptic():
    records, pools = coco_panoptic.convert(PAN / "panoptic_val.json", PAN / "panoptic_val",
                                           PAN / "captions_val.json", image_prefix="val2017")
    assert [r.id for r in records] == ["coco_panoptic/panoptic/1", "coco_panoptic/panoptic/2"]
    r = records[0]
    assert (r.image, r.height, r.width, r.kind, r.task) == ("val2017/000000000001.jpg", 6, 8, "words", "panoptic")
    # crowd segment skipped; phrases in order of first appearance, stuff marked
    assert r.phrases == [Phrase("sky", True), Phrase("person"), Phrase("dog"), Phrase("grass", True)]
    assert [(t.phrase_index, t.box, t.is_stuff) for t in r.targets] == [
        (0, [0, 0, 8, 2], True), (1, [1, 2, 3, 6], False), (2, [5, 3, 8, 6], False), (3, [0, 2, 8, 6], True)]
    person = np.zeros((6, 8), bool)
    person[2:6, 1:3] = True
    assert (mask(r.targets[1], r) == person).all()
    assert mask(r.targets[2], r).sum() == 9          # segment id 300 lives in the G channel too
    assert mask(r.targets[3], r).sum() == 11
    assert r.captions == ["A person walks a dog on the grass under a clear sky.", "A man and his dog in a field."]
    assert records[1].captions == []                 # its only caption has zero entropy
    assert [p.text for p in pools["coco_panoptic"]] == ["person", "car", "dog", "sky", "grass"]


def test_coco_panoptic_semantic_merges_segments_per_category(tmp_path):
    data = json.loads((PAN / "panoptic_val.json").read_text())
    data["annotations"][0]["segments_info"][3]["iscrowd"] = 0     # the crowd people become a second person
    (tmp_path / "p.json").write_text(json.dumps(data))
    records, _ = coco_panoptic.convert(tmp_path / "p.json", PAN / "panoptic_val", task="semantic")
    r = records[0]
    assert r.task == "semantic" and len(r.targets) == 4
    person = [t for t in r.targets if r.phrases[t.phrase_index].text == "person"]
    assert len(person) == 1 and mask(person[0], r).sum() == 8 + 4 and person[0].box == [1, 2, 5, 6]


def test_coco_detection_polygons_rle_and_crowds():
    records, pools = coco_detection.convert(FIX / "coco/instances_val.json")
    assert [r.id for r in records] == ["coco/instance/10", "coco/instance/11"]      # image 12 has no annotations
    r = records[0]
    assert r.task == "instance" and r.phrases == [Phrase("cat"), Phrase("bowl")]
    assert len(r.targets) == 2                                    # the crowd cat is skipped
    assert r.targets[0].segmentation == [[2, 3, 12, 3, 12, 11, 2, 11]] and r.targets[0].box == [2, 3, 12, 11]
    bowl = mask(r.targets[1], r)
    expected = np.zeros((20, 30), bool)
    expected[0:5, 15:20] = True
    assert isinstance(r.targets[1].segmentation["counts"], str) and (bowl == expected).all()
    assert mask(records[1].targets[0], records[1]).sum() == 16
    assert [p.text for p in pools["coco"]] == ["cat", "bowl", "kite"]


def test_objects365_boxes_only():
    records, pools = coco_detection.convert(FIX / "objects365/zhiyuan_objv2_val.json", source="objects365")
    r = records[0]
    assert r.task == "detection" and r.source == "objects365" and r.phrases == [Phrase("Sneakers"), Phrase("Person")]
    assert [(t.phrase_index, t.box, t.segmentation) for t in r.targets] == [
        (0, [10.5, 20.25, 40.5, 60.25], None), (1, [0, 0, 5, 5], None)]
    assert "objects365" in pools


def test_refcoco_one_record_per_sentence_and_split_filter():
    records, pools = refcoco.convert(FIX / "refcoco/refs(unc).p", FIX / "refcoco/instances.json")
    assert [r.id for r in records] == ["refcoco/0/0", "refcoco/0/1", "refcoco/1/2"] and pools == {}
    assert [r.phrases[0].text for r in records] == ["man on the left", "left guy", "right person"]
    assert all(r.kind == "sentence" and r.task == "single" and len(r.targets) == 1 for r in records)
    assert records[2].targets[0].box == [6, 2, 11, 8] and mask(records[2].targets[0], records[2]).sum() == 30
    val, _ = refcoco.convert(FIX / "refcoco/refs(unc).p", FIX / "refcoco/instances.json", split="val")
    assert [r.id for r in val] == ["refcoco/1/2"]


def test_grefcoco_multi_and_no_target():
    records, _ = grefcoco.convert(FIX / "grefcoco/grefs(unc).json", FIX / "refcoco/instances.json", split="val")
    assert [(r.phrases[0].text, r.task, len(r.targets)) for r in records] == [
        ("both people", "multi", 2), ("the dog on the sofa", "multi", 0)]
    everything, _ = grefcoco.convert(FIX / "grefcoco/grefs(unc).json", FIX / "refcoco/instances.json")
    assert everything[2].targets[0].box == [6, 2, 11, 8]            # a bare int ann_id


def test_goldg_phrases_from_caption_spans():
    records, pools = goldg.convert(FIX / "goldg/final_mixed_train.json")
    r = records[0]
    assert r.phrases == [Phrase("A woman"), Phrase("a red umbrella"), Phrase("two dogs")] and pools == {}
    assert [t.phrase_index for t in r.targets] == [0, 1, 2, 2]
    assert r.targets[1].box == [20, 5, 28, 13] and r.captions == ["A woman holds a red umbrella next to two dogs."]


def test_cli_writes_jsonl_and_category_pool(tmp_path, capsys):
    out = tmp_path / "coco.jsonl"
    assert convert_main(["coco-detection", "--instances", str(FIX / "coco/instances_val.json"), "--out", str(out),
                         "--image-prefix", "val2017"]) == 0
    back = read_jsonl(out)
    direct, _ = coco_detection.convert(FIX / "coco/instances_val.json", image_prefix="val2017")
    assert back == direct and back[0].image == "val2017/a.jpg"
    assert [p.text for p in read_categories(out)["coco"]] == ["cat", "bowl", "kite"]
    assert "wrote 2 records" in capsys.readouterr().out


def _edit_json(src: Path, dst: Path, edit) -> Path:
    data = json.loads(src.read_text())
    edit(data)
    dst.write_text(json.dumps(data))
    return dst


@pytest.mark.parametrize("edit,record,field", [
    (lambda d: d["annotations"][1].pop("bbox"), "annotations[1] (id 101)", "annotations[1].bbox"),
    (lambda d: d["annotations"][0].update(category_id=99), "annotations[0] (id 100)", "annotations[0].category_id"),
    (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]), "annotations[0] (id 100)",
     "annotations[0].segmentation"),
    (lambda d: d["annotations"][3]["segmentation"].update(size=[5, 5]), "annotations[3] (id 103)",
     "annotations[3].segmentation.size"),
    (lambda d: d["images"][1].pop("height"), "images[1] (id 11)", "images[1].height"),
])
def test_detection_errors_name_file_record_field(tmp_path, edit, record, field):
    bad = _edit_json(FIX / "coco/instances_val.json", tmp_path / "bad.json", edit)
    with pytest.raises(DataFormatError) as e:
        coco_detection.convert(bad)
    assert (e.value.file, e.value.record, e.value.field) == (str(bad), record, field)
    assert str(bad) in str(e.value) and record in str(e.value) and field in str(e.value)


def test_panoptic_error_for_segment_missing_from_png(tmp_path):
    bad = _edit_json(PAN / "panoptic_val.json", tmp_path / "p.json",
                     lambda d: d["annotations"][0]["segments_info"][1].update(id=77))
    with pytest.raises(DataFormatError) as e:
        coco_panoptic.convert(bad, PAN / "panoptic_val")
    assert (e.value.record, e.value.field) == ("annotations[0] (image_id 1)", "annotations[0].segments_info[1].id")


def test_referring_errors(tmp_path):
    refs = pickle.loads((FIX / "refcoco/refs(unc).p").read_bytes())
    refs[1]["ann_id"] = 999
    (tmp_path / "refs.p").write_bytes(pickle.dumps(refs))
    with pytest.raises(DataFormatError) as e:
        refcoco.convert(tmp_path / "refs.p", FIX / "refcoco/instances.json")
    assert (e.value.file, e.value.record, e.value.field) == (str(tmp_path / "refs.p"), "refs[1] (ref_id 1)", "ann_id")
    grefs = json.loads((FIX / "grefcoco/grefs(unc).json").read_text())
    grefs[1]["ann_id"] = [200]    # says no_target but lists a target
    (tmp_path / "g.json").write_text(json.dumps(grefs))
    with pytest.raises(DataFormatError) as e:
        grefcoco.convert(tmp_path / "g.json", FIX / "refcoco/instances.json")
    assert (e.value.record, e.value.field) == ("refs[1] (ref_id 1)", "no_target")
    bad = _edit_json(FIX / "goldg/final_mixed_train.json", tmp_path / "gg.json",
                     lambda d: d["annotations"][2].update(tokens_positive=[[37, 90]]))
    with pytest.raises(DataFormatError) as e:
        goldg.convert(bad)
    assert (e.value.record, e.value.field) == ("annotations[2]", "annotations[2].tokens_positive")


def test_cli_reports_errors_with_exit_code(tmp_path, capsys):
    shutil.copy(FIX / "coco/instances_val.json", tmp_path / "i.json")
    (tmp_path / "i.json").write_text("{not json")
    assert convert_main(["coco-detection", "--instances", str(tmp_path / "i.json"), "--out",
                         str(tmp_path / "o.jsonl")]) == 2
    assert str(tmp_path / "i.json") in capsys.readouterr().err


def test_merge_mixes_datasets_and_pools_and_rejects_repeated_ids(tmp_path):
    det, o365, goldg_out = tmp_path / "coco.jsonl", tmp_path / "o365.jsonl", tmp_path / "goldg.jsonl"
    assert convert_main(["coco-detection", "--instances", str(FIX / "coco/instances_val.json"), "--out", str(det)]) == 0
    assert convert_main(["coco-detection", "--instances", str(FIX / "objects365/zhiyuan_objv2_val.json"),
                         "--source", "objects365", "--out", str(o365)]) == 0
    assert convert_main(["goldg", "--json", str(FIX / "goldg/final_mixed_train.json"), "--out", str(goldg_out)]) == 0
    out = tmp_path / "all.jsonl"
    assert convert_main(["merge", "--out", str(out), str(det), str(o365), str(goldg_out)]) == 0
    assert [r.id for r in read_jsonl(out)] == ["coco/instance/10", "coco/instance/11", "objects365/detection/1",
                                               "goldg/0"]
    assert set(read_categories(out)) == {"coco", "objects365"}
    assert convert_main(["merge", "--out", str(tmp_path / "twice.jsonl"), str(det), str(det)]) == 2

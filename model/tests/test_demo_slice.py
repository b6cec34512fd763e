"""The shipped demo bundle (models/demo) re-scores its recorded metrics on the held-out CI slice: the reference
pipeline (onnx backend) runs the slice's cases, mvp_lm.eval scores them against the slice's ground truth, and every
metric must match models/demo/ci-slice/expected.json (recorded from the full held-out evaluation) within its
tolerance. A re-exported or retrained bundle without a refreshed slice fails here."""
import json
from pathlib import Path

from mvp_lm.demo.ci_slice import SPLIT, compare, flatten
from mvp_lm.demo.predict import ground_truth, merge_results
from mvp_lm.eval.evaluate import evaluate
from mvp_lm.reference import Bundle, load_image, run_case

DEMO = Path(__file__).resolve().parents[2] / "models" / "demo"
SLICE = DEMO / "ci-slice"


def test_bundle_is_the_evaluated_one():
    manifest = json.loads((DEMO / "manifest.json").read_text())
    expected = json.loads((SLICE / "expected.json").read_text())
    metrics = json.loads((DEMO / "metrics.json").read_text())
    assert manifest["weights"]["checkpoint_sha256"] == expected["checkpoint_sha256"] == metrics["checkpoint_sha256"]


def test_slice_metrics_match_the_recorded_ones():
    expected = json.loads((SLICE / "expected.json").read_text())
    cases = json.loads((SLICE / "cases.json").read_text())
    assert {c["image_id"] for c in cases} == set(expected["image_ids"])
    bundle = Bundle(DEMO, "onnx")
    results = [run_case(bundle, load_image(SLICE / c["image"]), c["tasks"], c["caption"], c["id"],
                        full_array_limit=0)["result"] for c in cases]
    got = evaluate(ground_truth(SLICE, SPLIT), merge_results(cases, results))
    assert len(flatten(expected["metrics"])) >= 20  # every task type is scored
    assert compare(expected["metrics"], got, expected["tolerance"]) == []

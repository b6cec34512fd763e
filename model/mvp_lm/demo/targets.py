"""The issue's targets on the held-out split, read from mvp_lm.eval's metrics, and the one number the demo's
checkpoint selection ranks snapshots by."""
from __future__ import annotations

# (label, path into mvp_lm.eval's metrics, threshold).
TARGETS = (("PQ", ("panoptic", "PQ"), 60), ("mIoU", ("semantic", "mIoU"), 70),
           ("box AP50", ("instance", "box", "AP50"), 80), ("RES cIoU", ("refcoco", "cIoU"), 75),
           ("REC Acc@0.5", ("refcoco", "Acc@0.5"), 85), ("no-target accuracy", ("grefcoco", "N-acc"), 80),
           ("gRES cIoU", ("grefcoco", "cIoU"), 60),
           ("sentence sensitivity", ("refcoco", "sensitivity", "differing_picks"), 80),
           ("caption shape F1", ("caption", "content_F1_things"), 80),
           ("caption stuff F1", ("caption", "content_F1_stuff"), 90))


def value_at(metrics: dict, path: tuple[str, ...]) -> float | None:
    for key in path:
        metrics = metrics.get(key, {}) if isinstance(metrics, dict) else {}
    return metrics if isinstance(metrics, (int, float)) else None


def target_rows(metrics: dict) -> list[dict]:
    rows = []
    for label, path, target in TARGETS:
        value = value_at(metrics, path)
        rows.append({"metric": label, "value": value, "target": target, "reached": (value or 0) >= target})
    return rows


def shown(value: float | None) -> str:
    """A metric as the tables and logs print it: one decimal, "n/a" where the metrics lack it."""
    return "n/a" if value is None else f"{value:.1f}"


def attainment(metrics: dict) -> float:
    """Mean over the targets of min(value / target, 1), in %: every target counts alike, and going past one buys
    nothing, so a snapshot cannot trade a missed target for a surplus on a met one."""
    shares = [min((r["value"] or 0) / r["target"], 1.0) for r in target_rows(metrics)]
    return 100 * sum(shares) / len(shares)

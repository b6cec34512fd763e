"""Parameter counts of the full MVP-LM per part, next to the design note's numbers.

Builds the model on the meta device (no memory, no weights). Usage:
    .venv/bin/python model/scripts/param_counts.py [--variant paper|released-code] [--preset full|tiny]
"""
from __future__ import annotations

import argparse

import torch

from mvp_lm import MVPLM, full, tiny

# design note (/work/shared/design/mvp-lm-architecture.md, "Size and cost at full size")
DESIGN = {"phi": 1.41e9, "swin": 87e6, "connector": 63e6, "pixel_decoder": 11e6, "perception decoder": 15e6,
          "total": 1.49e9}
# which top-level modules make up each part of the note; text projectors and stuff queries sit with the decoder
PARTS = {
    "swin": ["swin"],
    "connector": ["connector"],
    "phi": ["phi"],
    "pixel_decoder": ["pixel_decoder"],
    "perception decoder": ["query_gen", "decoder", "heads", "stuff_query", "stuff_embed", "phrase_projector",
                           "sentence_projector"],
    "base query MLP (paper only)": ["base_query_mlp"],
}


def count(model: MVPLM, names: list[str]) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="paper", choices=["paper", "released-code"])
    ap.add_argument("--preset", default="full", choices=["full", "tiny"])
    args = ap.parse_args()
    cfg = (full if args.preset == "full" else tiny)(args.variant)
    with torch.device("meta"):
        model = MVPLM(cfg)
    print(f"{args.preset} preset, {args.variant} variant")
    print(f"{'part':<30}{'params':>16}{'design note':>16}")
    covered = 0
    for part, names in PARTS.items():
        n = count(model, names)
        covered += n
        ref = f"{DESIGN[part] / 1e6:,.0f} M" if part in DESIGN and args.preset == "full" else ""
        print(f"{part:<30}{n / 1e6:>14,.2f} M{ref:>16}")
    total = sum(p.numel() for p in model.parameters())
    assert covered == total, f"parts cover {covered} of {total} parameters"
    ref = f"{DESIGN['total'] / 1e6:,.0f} M" if args.preset == "full" else ""
    print(f"{'total':<30}{total / 1e6:>14,.2f} M{ref:>16}")


if __name__ == "__main__":
    main()

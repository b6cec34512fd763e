"""python -m mvp_lm.train --config tiny --stage 2 --data SFT.jsonl --images DIR --out RUN_DIR [--resume] ...

Multi-process data parallel: torchrun --nproc_per_node N -m mvp_lm.train ... (gloo on CPU, nccl on GPU).
"""
import argparse

from .. import pretrained
from .loop import TrainOptions, train


def parse_args(argv=None) -> TrainOptions:
    p = argparse.ArgumentParser(prog="python -m mvp_lm.train", description="Train MVP-LM on SFT records.")
    p.add_argument("--data", required=True,
                   help="SFT JSONL (with its .categories.json for negative phrases; with a .mix.json from "
                        "python -m mvp_lm.data.mix, datasets are drawn in its ratios)")
    p.add_argument("--images", required=True, help="root that records' image paths are relative to")
    p.add_argument("--out", required=True, help="run directory: checkpoint.pt, log.jsonl, config.json, tokenizer.json")
    p.add_argument("--config", choices=["tiny", "full"], default="tiny", help="model preset")
    p.add_argument("--variant", choices=["paper", "released-code"], default="paper")
    p.add_argument("--stage", type=int, choices=[1, 2], default=2,
                   help="1: connector only, LM loss; 2: all but the image encoder, LM + decoder losses")
    p.add_argument("--train-encoder", action="store_true",
                   help="stage 2: train the image encoder too (one that starts random, as in the demo model)")
    p.add_argument("--steps", type=int, default=1000, help="length of the whole schedule")
    p.add_argument("--batch-size", type=int, default=2, help="per process")
    p.add_argument("--lr", type=float, help="default 1e-3 (stage 1, tiny) or 6e-5 (full stage 2)")
    p.add_argument("--weight-decay", type=float, help="default 0 (stage 1) or 0.05 (stage 2)")
    p.add_argument("--warmup-ratio", type=float, default=0.03)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-points", type=int, help="mask points per matched mask (default 12544 full, 256 tiny)")
    p.add_argument("--dn-queries", type=int, help="denoising query budget (default 100 full, 20 tiny; 0 = off)")
    p.add_argument("--dn-noise", type=float, default=0.4)
    p.add_argument("--sentence-loss-scale", type=float, default=0.1,
                   help="factor on the sentence-score BCE (0.1 in the released code)")
    p.add_argument("--response-mix", type=float, default=1.0,
                   help="probability of the caption response; otherwise 'The perception result is <PER>'")
    p.add_argument("--max-phrases", type=int, default=64)
    p.add_argument("--max-negatives", type=int, default=32)
    p.add_argument("--tokenizer", help="tokenizer.json (default: train the project tokenizer)")
    p.add_argument("--vocab-size", type=int, default=4096, help="when training the tokenizer")
    p.add_argument("--init", help="start from the weights (and config, tokenizer) of another run directory")
    pretrained.add_arguments(p)
    p.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR's checkpoint exactly (a fresh start when it has none)")
    p.add_argument("--stop-after", type=int, help="stop and save after this many steps of this invocation")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast forward (GPU)")
    p.add_argument("--grad-checkpoint", action="store_true",
                   help="recompute the LLM layers' activations in backward instead of keeping them (less memory)")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return TrainOptions(**vars(p.parse_args(argv)))


if __name__ == "__main__":
    train(parse_args())

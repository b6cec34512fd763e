"""The training loop: options, model/stage set-up, data, optimisation, logging, checkpoint and exact resume."""
import dataclasses
import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import pretrained
from ..config import MVPLMConfig, full, tiny
from ..data.record import read_categories, read_jsonl
from ..data.sampler import Sampler, SamplerConfig
from ..model import MVPLM
from ..prompt import default_spec
from ..tokenizer import load_tokenizer, save_tokenizer, train_tokenizer
from .checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from .collate import collate
from .dataset import SFTDataset, training_batches
from .distributed import DistInfo, all_reduce_sum, barrier, init_distributed, shutdown
from .losses import SetCriterion, weighted_total
from .matcher import LossWeights
from .schedule import build_optimizer, build_scheduler
from .step import TrainingStep

COMPONENTS = ("lm", "cls", "mask", "dice", "l1", "giou")
# Per preset: mask points per matched mask (12,544 at 1024², ~1/84 of the 256² mask grid) and dn queries.
PRESET_DEFAULTS = {"full": {"num_points": 12544, "dn_queries": 100},
                   "tiny": {"num_points": 256, "dn_queries": 20}}


@dataclass
class TrainOptions:
    data: str
    images: str
    out: str
    config: str = "tiny"  # model preset: tiny | full
    variant: str = "paper"
    stage: int = 2  # 1: connector only (LM loss); 2: all but the image encoder (LM + decoder losses)
    train_encoder: bool = False  # stage 2 trains the image encoder too (for one trained from scratch)
    steps: int = 1000  # length of the whole schedule
    batch_size: int = 2  # per process
    lr: float | None = None  # default: 1e-3 stage 1; stage 2: 6e-5 full, 1e-3 tiny (trains from scratch)
    weight_decay: float | None = None  # default: 0.0 stage 1, 0.05 stage 2 (paper Table 2)
    warmup_ratio: float = 0.03
    grad_clip: float = 1.0
    seed: int = 0
    num_points: int | None = None
    dn_queries: int | None = None
    dn_noise: float = 0.4
    sentence_loss_scale: float = 0.1  # factor on the sentence-score BCE (the released code's 0.1)
    response_mix: float = 1.0  # probability of the caption response (else "The perception result is <PER>")
    max_phrases: int = 64
    max_negatives: int = 32
    tokenizer: str | None = None  # tokenizer.json; default: train the project tokenizer (vocab_size)
    vocab_size: int = 4096
    init: str | None = None  # run directory whose checkpoint's weights start this run (e.g. stage 1 -> 2)
    init_llm: str | None = None  # Hugging Face Phi directory: weights and tokenizer (mvp_lm/pretrained.py)
    init_vision: str | None = None  # Swin checkpoint (official, timm or transformers layout)
    strict: bool = True  # False: pretrained tensors the model has no place for are skipped, not an error
    resume: bool = False
    stop_after: int | None = None  # stop (and save) after this many steps of this invocation
    precision: str = "fp32"  # fp32 | bf16 (autocast for the forward pass; weights and optimiser stay fp32)
    grad_checkpoint: bool = False  # recompute the LLM layers' activations in backward (memory for compute)
    save_every: int = 500
    workers: int = 0
    device: str = "auto"
    progress: bool = True

    def resolved(self) -> "TrainOptions":
        d = PRESET_DEFAULTS[self.config]
        lr = self.lr if self.lr is not None else (1e-3 if self.stage == 1 or self.config == "tiny" else 6e-5)
        wd = self.weight_decay if self.weight_decay is not None else (0.0 if self.stage == 1 else 0.05)
        return dataclasses.replace(
            self, lr=lr, weight_decay=wd,
            num_points=self.num_points if self.num_points is not None else d["num_points"],
            dn_queries=self.dn_queries if self.dn_queries is not None else d["dn_queries"],
        )


def set_trainable(model: MVPLM, stage: int, train_encoder: bool = False) -> None:
    """Stage 1: the connector only. Stage 2: everything except the Swin image encoder (the paper's is pretrained),
    or everything with `train_encoder` (an encoder that starts random, as in the demo model)."""
    for name, p in model.named_parameters():
        if stage == 1:
            p.requires_grad_(name.startswith("connector."))
        else:
            p.requires_grad_(train_encoder or not name.startswith("swin."))


def _tokenizer(opts: TrainOptions, run: Path) -> tuple[Tokenizer, range | None]:
    """The run's tokenizer, and the ids added to a pretrained LLM's tokenizer (their rows are initialised)."""
    saved = run / "tokenizer.json"
    if saved.exists() and opts.resume:
        return load_tokenizer(saved), None
    if opts.tokenizer:
        return load_tokenizer(opts.tokenizer), None
    if opts.init:
        return load_tokenizer(Path(opts.init) / "tokenizer.json"), None
    if opts.init_llm:
        return pretrained.tokenizer(Path(opts.init_llm))
    return train_tokenizer(opts.vocab_size), None


def _config(opts: TrainOptions, tok: Tokenizer, run: Path, pre: pretrained.Pretrained | None) -> MVPLMConfig:
    """The run's config (resume/init: the saved one), else the preset as `mvp_lm.export` builds it (with a
    pretrained LLM's table size), so the checkpoint loads there; the table may have more rows than the tokenizer
    has ids."""
    for source in ([run] if opts.resume else []) + ([Path(opts.init)] if opts.init else []):
        if (source / "config.json").exists():
            return MVPLMConfig.from_dict(json.loads((source / "config.json").read_text()))
    cfg = (tiny if opts.config == "tiny" else full)(opts.variant)
    if pre is not None:
        cfg = pretrained.config(cfg, pre, tok)
    vocab = tok.get_vocab_size()
    if vocab > cfg.phi.vocab_size:
        raise ValueError(f"tokenizer has {vocab} ids, more than the {opts.config} preset's {cfg.phi.vocab_size} "
                         "embedding rows")
    return cfg


def _num_masks(batch, info: DistInfo) -> float:
    """Targets per process averaged over the global batch (≥1): the normaliser of mask and box losses."""
    n = torch.tensor([float(sum(len(t) for t in batch.targets))], device=info.device)
    return max(float(all_reduce_sum(n, info)) / info.world_size, 1.0)


def _log_row(losses: dict, weights: LossWeights, info: DistInfo) -> dict[str, float]:
    """Weighted loss per component summed over prediction sets, averaged over processes."""
    values = torch.zeros(len(COMPONENTS), device=info.device)
    for key, value in losses.items():
        c = key.split("/")[0]
        values[COMPONENTS.index(c)] += value.detach().float() * (1.0 if c == "lm" else getattr(weights, c))
    values = all_reduce_sum(values, info) / info.world_size
    row = dict(zip(COMPONENTS, values.tolist()))
    row["loss"] = float(values.sum())
    return row


@dataclass
class TrainResult:
    rows: list[dict]  # what this invocation logged (rank 0 also appends them to RUN/log.jsonl)
    model: MVPLM  # this process's model after the last step
    step: int


def train(opts: TrainOptions) -> TrainResult:
    """Run (or continue) a training run."""
    opts = opts.resolved()
    if opts.init and (opts.init_llm or opts.init_vision):
        raise ValueError("--init (a run directory) and --init-llm/--init-vision (pretrained parts) exclude each other")
    if opts.tokenizer and opts.init_llm:
        raise ValueError("--tokenizer and --init-llm exclude each other: the Phi directory brings its tokenizer")
    if opts.stage not in (1, 2):
        raise ValueError(f"--stage must be 1 or 2, got {opts.stage}")
    if opts.precision not in ("fp32", "bf16"):
        raise ValueError(f"--precision must be fp32 or bf16, got {opts.precision!r}")
    info = init_distributed(opts.device)
    run = Path(opts.out)
    run.mkdir(parents=True, exist_ok=True)
    try:
        return _train(opts, info, run)
    finally:
        shutdown(info)


def _train(opts: TrainOptions, info: DistInfo, run: Path) -> TrainResult:
    pre = pretrained.Pretrained.of(opts.init_llm, opts.init_vision, opts.strict)
    tok, added = _tokenizer(opts, run)
    cfg = _config(opts, tok, run, pre)
    spec = default_spec(tok, cfg.variant, cfg.num_image_tokens)

    torch.manual_seed(opts.seed)  # identical initial weights on every rank
    model = MVPLM(cfg)
    if opts.init:
        init_state = torch.load(Path(opts.init) / "checkpoint.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(init_state["model"])
    if pre is not None and not (opts.resume and (run / "checkpoint.pt").exists()):
        pretrained.initialise(model, pre, added, log=print if info.rank == 0 else lambda _: None)
    set_trainable(model, opts.stage, opts.train_encoder)
    model.phi.gradient_checkpointing = opts.grad_checkpoint
    model.to(info.device).train()
    weights = LossWeights()
    criterion = SetCriterion(weights, num_points=opts.num_points, sentence_scale=opts.sentence_loss_scale)
    step_module = TrainingStep(model, criterion, opts.stage, opts.dn_queries, opts.dn_noise)
    runner = DistributedDataParallel(step_module) if info.enabled else step_module
    optimizer = build_optimizer(model, opts.lr, opts.weight_decay)
    scheduler = build_scheduler(optimizer, opts.steps, opts.warmup_ratio)

    step = 0
    torch.manual_seed(opts.seed * 1000 + info.rank + 1)  # per-rank randomness: dn noise, point sampling
    if opts.resume and (run / "checkpoint.pt").exists():
        state, rng = load_checkpoint(run, info.rank)
        _check_same_run(state["options"], opts)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        set_rng_state(rng)
    if info.rank == 0:
        save_tokenizer(tok, run / "tokenizer.json")
        (run / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        (run / "options.json").write_text(json.dumps(dataclasses.asdict(opts), indent=1))

    records = read_jsonl(opts.data)
    sampler = Sampler(read_categories(opts.data), SamplerConfig(max_phrases=opts.max_phrases,
                                                                max_negatives=opts.max_negatives,
                                                                caption_prob=opts.response_mix))
    dataset = SFTDataset(records, opts.images, sampler, tok, spec, cfg, opts.seed)
    end = opts.steps if opts.stop_after is None else min(opts.steps, step + opts.stop_after)
    batches, described = training_batches(opts.data, records, opts.batch_size, info.world_size, info.rank, opts.seed,
                                          step, end, opts.steps)
    if info.rank == 0:
        print(described)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=partial(collate, pad_id=spec.tokens["pad"]),
                        num_workers=opts.workers, generator=torch.Generator())  # keeps the global RNG untouched
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    log_path = run / "log.jsonl"
    if info.rank == 0:
        _truncate_log(log_path, step)
    autocast = torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")
    bar = tqdm(total=opts.steps, initial=step, disable=not opts.progress or info.rank != 0, desc=f"stage {opts.stage}")
    for batch in loader:
        t0 = time.perf_counter()
        batch = batch.to(info.device)
        with autocast:
            losses = runner(batch, _num_masks(batch, info))
        total = weighted_total(losses, weights)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, opts.grad_clip)
        row = {"step": step + 1, "lr": scheduler.get_last_lr()[0]} | _log_row(losses, weights, info)
        optimizer.step()
        scheduler.step()
        step += 1
        row |= {"grad_norm": float(grad_norm), "sec": round(time.perf_counter() - t0, 4)}
        rows.append(row)
        if info.rank == 0:
            with open(log_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
        if step % opts.save_every == 0 or step == end:
            _save(run, info, model, optimizer, scheduler, step, cfg, opts)
    bar.close()
    return TrainResult(rows, model, step)


# Options that fix the data stream and the trained parameters: a resumed run must keep them.
RESUME_INVARIANTS = ("data", "config", "variant", "stage", "batch_size", "seed", "steps")


def _check_same_run(saved: dict, opts: TrainOptions) -> None:
    changed = [f"--{k.replace('_', '-')} {saved[k]!r} -> {getattr(opts, k)!r}"
               for k in RESUME_INVARIANTS if saved.get(k) != getattr(opts, k)]
    if changed:
        raise ValueError("--resume with options that differ from the checkpoint's: " + "; ".join(changed))


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop rows of steps after the checkpoint (a crashed run may have logged past its last save)."""
    if not log_path.exists():
        return
    kept = [line for line in log_path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    log_path.write_text("".join(line + "\n" for line in kept))


def _save(run, info, model, optimizer, scheduler, step, cfg, opts) -> None:
    state = None
    if info.rank == 0:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "step": step, "config": cfg.to_dict(),
                 "options": dataclasses.asdict(opts)}
    save_checkpoint(run, info.rank, state)
    barrier(info)

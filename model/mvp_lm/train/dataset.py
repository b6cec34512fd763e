"""Training data stream: SFT records materialised per iteration, in batches that can resume at any step.

Sample randomness (negatives, phrase order, caption choice) comes from a generator seeded by
(seed, epoch, record index), and the record order of each epoch from DistributedSampler(seed, epoch), so the
batches of step s are a pure function of (seed, s, rank, world size): a resumed run sees exactly the data an
uninterrupted run would have seen. A mixed JSONL (one with a `.mix.json`, data/mix_manifest.py) is drawn by
MixedBatches instead: datasets in the manifest's ratios, just as resumable.
"""
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from torch.utils.data import Dataset, DistributedSampler

from ..config import MVPLMConfig
from ..data.mix_manifest import group_members, read_mix
from ..data.record import Record
from ..data.sampler import Sampler
from ..prompt import PromptSpec
from .collate import TrainItem, make_item


class SFTDataset(Dataset):
    def __init__(self, records: list[Record], image_root: str | Path, sampler: Sampler, tok: Tokenizer,
                 spec: PromptSpec, cfg: MVPLMConfig, seed: int):
        self.records, self.image_root, self.sampler = records, image_root, sampler
        self.tok, self.spec, self.cfg, self.seed = tok, spec, cfg, seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int]) -> TrainItem:
        epoch, index = key  # epoch: the pass over the records (MixedBatches: over the record's group)
        rng = np.random.default_rng([self.seed, epoch, index])
        sample = self.sampler.sample(self.records[index], rng)
        return make_item(sample, self.image_root, self.tok, self.spec, self.cfg)


class ResumableBatches:
    """Batch sampler yielding lists of (epoch, record index) for steps [start_step, total_steps) of this rank."""

    def __init__(self, num_records: int, batch_size: int, world_size: int, rank: int, seed: int,
                 start_step: int, total_steps: int):
        self.sampler = DistributedSampler(range(num_records), num_replicas=world_size, rank=rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.batch_size, self.start_step, self.total_steps = batch_size, start_step, total_steps
        self.steps_per_epoch = len(self.sampler) // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"{num_records} records are fewer than world size {world_size} × batch size {batch_size}")

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self):
        epoch, order = None, []
        for step in range(self.start_step, self.total_steps):
            e, k = divmod(step, self.steps_per_epoch)
            if e != epoch:
                epoch = e
                self.sampler.set_epoch(e)
                order = list(self.sampler)
            yield [(e, i) for i in order[k * self.batch_size:(k + 1) * self.batch_size]]


class MixedBatches:
    """Batch sampler over groups of records drawn in given ratios (a mix, data/mix_manifest.py).

    Each draw picks a group with probability ratio, then the group's next record. A group is walked pass after
    pass, each pass a fresh permutation of its records whose positions are dealt to the ranks in turn (this rank
    takes positions rank, rank + W, ...), so within a pass no record is drawn twice on any rank. The group of every
    draw of the schedule is fixed up front from (seed, rank), so steps [start_step, total_steps) are a pure function
    of (seed, step, rank, world size), as with ResumableBatches. Yields lists of (pass, record index).
    """

    def __init__(self, groups: list[np.ndarray], ratios: list[float], batch_size: int, world_size: int, rank: int,
                 seed: int, start_step: int, total_steps: int, schedule_steps: int):
        self.groups, self.world_size, self.rank, self.seed = groups, world_size, rank, seed
        self.start_step, self.total_steps = start_step, total_steps
        # schedule_steps (the whole run's, not this invocation's) keeps the draws the same across --stop-after/--resume
        p = np.asarray(ratios, dtype=np.float64)
        self.choices = np.random.default_rng([seed, rank]).choice(len(groups), (schedule_steps, batch_size), p=p / p.sum())

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self):
        drawn = np.bincount(self.choices[:self.start_step].ravel(), minlength=len(self.groups))
        permutations: dict[int, tuple[int, np.ndarray]] = {}
        for step in range(self.start_step, self.total_steps):
            batch = []
            for g in map(int, self.choices[step]):
                n = len(self.groups[g])
                pass_, position = divmod(int(drawn[g]) * self.world_size + self.rank, n)
                drawn[g] += 1
                if permutations.get(g, (-1,))[0] != pass_:
                    permutations[g] = (pass_, np.random.default_rng([self.seed, g, pass_]).permutation(n))
                batch.append((pass_, int(self.groups[g][permutations[g][1][position]])))
            yield batch


def training_batches(data: str | Path, records: list[Record], batch_size: int, world_size: int, rank: int, seed: int,
                     start_step: int, total_steps: int, schedule_steps: int):
    """MixedBatches when `data` has a mix manifest, else ResumableBatches; and a line saying which."""
    groups = read_mix(data)
    if groups is None:
        return (ResumableBatches(len(records), batch_size, world_size, rank, seed, start_step, total_steps),
                f"data: {len(records)} records, epoch by epoch")
    members = group_members(records, groups, data)
    batches = MixedBatches(members, [g.ratio for g in groups], batch_size, world_size, rank, seed, start_step,
                           total_steps, schedule_steps)
    return batches, "data: mix of " + ", ".join(f"{g.name} {g.ratio:.1%} ({len(m)} records)"
                                                for g, m in zip(groups, members))

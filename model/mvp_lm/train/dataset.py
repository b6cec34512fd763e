"""Training data stream: SFT records materialised per iteration, in batches that can resume at any step.

Sample randomness (negatives, phrase order, caption choice) comes from a generator seeded by
(seed, epoch, record index), and the record order of each epoch from DistributedSampler(seed, epoch), so the
batches of step s are a pure function of (seed, s, rank, world size): a resumed run sees exactly the data an
uninterrupted run would have seen.
"""
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from torch.utils.data import Dataset, DistributedSampler

from ..config import MVPLMConfig
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
        epoch, index = key
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

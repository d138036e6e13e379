"""The loaders that feed a split to the loop. Tensors that sit in memory are served by `TensorLoader` (one indexing
op per batch, no per-sample Python loop); anything else by a DataLoader that shuffles in the same order, so caching a
split changes the speed of a run, not its result. A DataLoader worker that dies is one sentence with the fix."""
from __future__ import annotations

import contextlib
import itertools
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, TensorDataset

from trainer.errors import UserError, first_line

if TYPE_CHECKING:
    from collections.abc import Iterator


class TensorLoader:
    """Batches of in-memory tensors, cut by slicing a (shuffled) index: what a hand-written loop would do.

    A DataLoader over a TensorDataset indexes one sample at a time in Python and collates them, which costs
    more than a small model's whole step. On a GPU the tensors are moved there once, so a batch costs no copy.
    Under torchrun each rank serves every `world_size`-th sample of the (shared-seed) order, like a
    DistributedSampler; when shuffling (training) the order is padded by wrapping around so every rank takes the
    same number of steps, which DistributedDataParallel needs; otherwise (evaluation) the split is exact. With
    `weights` (data.sampler) a pass draws as many samples as the split has, with replacement, in proportion to them.
    """

    def __init__(self, dataset: TensorDataset, *, batch_size: int, shuffle: bool,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None, rank: int = 0,
                 world_size: int = 1, weights: torch.Tensor | None = None):
        self.tensors = tuple(t.to(device) for t in dataset.tensors) if device is not None else dataset.tensors
        self.batch_size = batch_size
        self.shuffle = shuffle or weights is not None
        self.generator, self.weights = generator, weights
        self.rank, self.world_size = rank, world_size

    def _num_samples(self):
        n = len(self.tensors[0])
        if self.world_size == 1:
            return n
        return -(-n // self.world_size) if self.shuffle else len(range(self.rank, n, self.world_size))

    def __len__(self):
        return -(-self._num_samples() // self.batch_size)

    def _order(self):
        """This rank's sample indices for one pass, on the tensors' device; None means all, in order."""
        n = len(self.tensors[0])
        if not self.shuffle and self.world_size == 1:
            return None
        order = draw_order(n, self.generator, self.weights) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            if self.shuffle:
                total = self._num_samples() * self.world_size
                order = order.repeat(-(-total // n))[:total]
            order = order[self.rank::self.world_size]
        return order.to(self.tensors[0].device)

    def __iter__(self):
        return self.batches()

    def batches(self, skip: int = 0) -> Iterator[list[torch.Tensor]]:
        """This rank's batches for one pass, leaving out the first `skip`."""
        order = self._order()
        for start in range(skip * self.batch_size, self._num_samples(), self.batch_size):
            if order is None:  # contiguous slices are views: no copy at all
                yield [t[start:start + self.batch_size] for t in self.tensors]
            else:
                idx = order[start:start + self.batch_size]
                yield [t[idx] for t in self.tensors]


def draw_order(n: int, generator: torch.Generator | None, weights: torch.Tensor | None = None) -> torch.Tensor:
    """One pass's order of a split of n samples: a permutation, or with `weights` n draws with replacement in
    proportion to them (a WeightedRandomSampler's)."""
    if weights is None:
        return torch.randperm(n, generator=generator)
    return torch.multinomial(weights, n, replacement=True, generator=generator)


class Shuffle(Sampler):
    """A random order of a split drawn as TensorLoader draws it (draw_order from `generator`), for a DataLoader: a
    split served from disk comes in the same order as the same split cached in memory. (A DataLoader's own
    RandomSampler draws from the generator after the DataLoader has taken its workers' base seed from it.) Under
    torchrun (`rank` of `world_size`) each rank takes every world_size-th of the order, padded by wrapping around."""

    def __init__(self, size: int, generator: torch.Generator, weights: torch.Tensor | None = None, rank: int = 0,
                 world_size: int = 1):
        self.size, self.generator, self.weights = size, generator, weights
        self.rank, self.world_size = rank, world_size

    def __len__(self):
        return -(-self.size // self.world_size)

    def __iter__(self):
        order = draw_order(self.size, self.generator, self.weights)
        order = order.repeat(-(-len(self) * self.world_size // self.size))[:len(self) * self.world_size]
        return iter(order[self.rank::self.world_size].tolist())


def make_loader(dataset: Dataset, *, batch_size: int, shuffle: bool, num_workers: int = 0, seed: int = 0,
                pin_memory: bool = False, device: torch.device | str | None = None, rank: int = 0, world_size: int = 1,
                weights: torch.Tensor | None = None) -> TensorLoader | DataLoader:
    """The loader for one split; shuffling order follows `seed` so a run is reproducible. In-memory tensors are
    moved to a CUDA `device` once; `rank`/`world_size` shard the split for a torchrun run
    (trainer/runtime/distributed.py); `weights` (one per sample: data.sampler) draw each pass with replacement."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(dataset, TensorDataset):
        on_gpu = device if device is not None and torch.device(device).type == "cuda" else None
        return TensorLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, device=on_gpu, rank=rank,
                            world_size=world_size, weights=weights)
    sampler = Shuffle(len(dataset), torch.Generator().manual_seed(seed)) if shuffle else None
    if weights is not None:
        sampler = Shuffle(len(dataset), torch.Generator().manual_seed(seed), weights, rank, world_size)
    elif world_size > 1:
        # evaluation splits exactly (no sample twice); training pads so every rank takes as many steps
        sampler = (DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed) if shuffle
                   else range(rank, len(dataset), world_size))
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, generator=generator,
        pin_memory=pin_memory, persistent_workers=num_workers > 0,
    )


def epoch_batches(loader: TensorLoader | DataLoader, seed: int, epoch: int,
                  skip: int = 0) -> Iterator[list[torch.Tensor]]:
    """The loader's batches for `epoch`, leaving out the first `skip` (those a run interrupted mid-epoch already
    trained on). The shuffle order depends only on (seed, epoch), not on what ran before, so a resumed run sees
    exactly the batches an uninterrupted one would."""
    sampler = getattr(loader, "sampler", None)
    # the loader's own generator (TensorLoader's order; a DataLoader's worker seeds) and a Shuffle's
    for generator in (getattr(loader, "generator", None), getattr(sampler, "generator", None)):
        if generator is not None:
            generator.manual_seed(seed * 100_003 + epoch)
    if hasattr(sampler, "set_epoch"):  # a DistributedSampler (torchrun) seeds its shuffle with seed + epoch
        sampler.set_epoch(epoch)
    if isinstance(loader, TensorLoader):
        return loader.batches(skip)
    return itertools.islice(loader, skip, None)  # a DataLoader still loads the skipped batches, once


def reader(dataset: Dataset, num_workers: int) -> DataLoader:
    """One pass over a dataset in order, in batches of 256. Its own generator: a DataLoader draws its workers' seed
    from the global one otherwise, which would change the model's initialisation that follows."""
    return DataLoader(dataset, batch_size=256, num_workers=num_workers, generator=torch.Generator())


@contextlib.contextmanager
def worker_failures_explained() -> Iterator[None]:
    """A DataLoader worker that died (out of memory, a crashing library) as one sentence with the fix."""
    try:
        yield
    except RuntimeError as error:
        if "DataLoader worker" not in str(error):
            raise
        raise UserError(f"a DataLoader worker failed ({first_line(error)}): run with data.num_workers=0 to see the "
                        "error in the main process") from None

"""data.normalize: per-channel (x - mean) / std, with the training split's statistics or data.mean/data.std."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from trainer.data.loaders import reader, worker_failures_explained
from trainer.data.splits import MapInputs, Splits
from trainer.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Sequence

STATISTICS_SAMPLES = 5000  # training samples data.normalize reads its statistics from (a seeded sample beyond that)


class Standardize:
    """(x - mean) / std per channel (dimension `channel_dim` of x); a class, so DataLoader workers can take it."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], channel_dim: int = 0):
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)
        self.channel_dim = channel_dim

    def __call__(self, x):
        view = [1] * x.dim()
        view[self.channel_dim] = -1
        return (x - self.mean.view(view)) / self.std.view(view)


def channel_values(value: object, key: str, channels: int) -> list[float]:
    """data.mean / data.std as one float per channel: a number or a one-item list is every channel's."""
    values = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "__len__") else [value]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    if not numbers or len(values) not in (1, channels) or (key == "data.std" and min(values) <= 0):
        raise UserError(f"{key}={value} is invalid: give one number for every channel or one per channel "
                        f"({channels} here){', each > 0' if key == 'data.std' else ''}, or null for the training "
                        "split's statistics")
    return [float(v) for v in values] * (channels if len(values) == 1 else 1)


def channel_statistics(dataset: Dataset, *, num_workers: int, seed: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased) std of a split's inputs, over all of it or, beyond STATISTICS_SAMPLES
    samples, a sample of that many drawn by seed; summed in float64. The sums read the same batches whether the
    split is in memory or on disk, so both give the same numbers. A channel without spread is left unscaled."""
    n = len(dataset)
    picked = torch.arange(n) if n <= STATISTICS_SAMPLES else torch.randperm(
        n, generator=torch.Generator().manual_seed(seed))[:STATISTICS_SAMPLES].sort().values
    workers = 0 if isinstance(dataset, TensorDataset) else num_workers
    total = squares = count = 0
    with worker_failures_explained():
        for x, _ in reader(Subset(dataset, picked.tolist()), workers):
            x = x.double().transpose(0, 1).flatten(1)  # channels x values
            total, squares, count = total + x.sum(1), squares + (x * x).sum(1), count + x.shape[1]
    mean = total / count
    std = ((squares - total * mean) / max(count - 1, 1)).clamp_min(0).sqrt()
    return mean.tolist(), torch.where(std > 1e-6, std, torch.ones_like(std)).tolist()


def normalized(splits: Splits, mean: Sequence[float], std: Sequence[float]) -> Splits:
    """Every split's inputs standardised per channel with the given values (the training split's statistics, or
    data.mean/data.std): tensors in memory once, now; anything else on access."""
    def part(dataset: Dataset | None) -> Dataset | None:
        if dataset is None:
            return None
        if isinstance(dataset, TensorDataset):
            x, y = dataset.tensors
            return TensorDataset(Standardize(mean, std, channel_dim=1)(x), y)
        return MapInputs(dataset, Standardize(mean, std))

    return replace(splits, train=part(splits.train), val=part(splits.val), test=part(splits.test))

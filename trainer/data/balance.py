"""Class balance of the training split: a long-tailed training split made from any classification set
(data.imbalance), the training split's samples per class (data.class_counts: the data fact class-weighted losses are
computed from), and the weights of the balanced sampler (data.sampler=balanced)."""
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from trainer.data.splits import Splits, labels_of
from trainer.logs import log

IMBALANCE_STREAM = 0x10B7A11  # mixed with `seed`: the long tail draws from a random stream of its own


class Subsample(Dataset):
    """The samples `indices` of `dataset`, whose labels are `targets` (data.imbalance on data not held in tensors:
    reading the labels back never decodes an image)."""

    def __init__(self, dataset: Dataset, indices: list[int], targets: torch.Tensor):
        self.dataset, self.indices, self.targets = dataset, indices, targets

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]


def long_tail_counts(counts: list[int], ratio: float) -> list[int]:
    """How many training samples each class keeps in a long-tailed split (CIFAR-LT: Cao et al. 2019, Cui et al.
    2019): class k of K keeps floor(n_k * ratio^(k / (K - 1))) of its n_k samples, at least one of any it has, so
    the first class keeps all of its own and the last a `ratio` of its own."""
    last = max(len(counts) - 1, 1)
    return [min(n, max(int(n * ratio ** (k / last)), 1)) if n else 0 for k, n in enumerate(counts)]


def with_imbalance(splits: Splits, ratio: float | None, *, num_classes: int, seed: int) -> Splits:
    """data.imbalance: the training split long-tailed by long_tail_counts, the samples each class keeps drawn by
    `seed` from a random stream of their own (the run's other random numbers are those of a balanced run), in the
    dataset's order; val and test stay as they were. `ratio` None or 1 changes nothing."""
    if ratio is None or ratio == 1:
        return splits
    labels = labels_of(splits.train).long()
    before = labels.bincount(minlength=num_classes).tolist()
    keep = long_tail_counts(before, ratio)
    rng = np.random.default_rng([IMBALANCE_STREAM, seed % 2**64])
    kept = [rng.permutation(np.flatnonzero(labels.numpy() == k))[:n] for k, n in enumerate(keep)]
    indices = torch.from_numpy(np.sort(np.concatenate(kept))).long()
    train = (TensorDataset(*(t[indices] for t in splits.train.tensors)) if isinstance(splits.train, TensorDataset)
             else Subsample(splits.train, indices.tolist(), labels[indices]))
    log.info(f"data.imbalance={ratio}: the training split keeps {sum(keep)} of {sum(before)} samples, per class "
             + ", ".join(f"{k} {n}/{total}" for k, (n, total) in enumerate(zip(keep, before))))
    return replace(splits, train=train)


def class_counts(dataset: Dataset, num_classes: int) -> list[int]:
    """data.class_counts: the samples of each class in a (training) split, as the run trains on it."""
    return labels_of(dataset).long().bincount(minlength=num_classes).tolist()


def inverse_frequency(labels: torch.Tensor) -> torch.Tensor:
    """Each sample's weight 1 / (samples of its class): drawn in proportion to it, every class is drawn equally
    often (a WeightedRandomSampler's usual weights)."""
    counts = labels.long().bincount()
    return 1.0 / counts[labels.long()].double()


# data.sampler: how the training batches are drawn; null shuffles the split, a name here draws each epoch's
# len(split) samples with replacement in proportion to the weights it gives each sample
SAMPLERS = {"balanced": inverse_frequency}


def sampler_weights(sampler: str | None, dataset: Dataset) -> torch.Tensor | None:
    """The per-sample weights data.sampler draws the training split with, None to shuffle it."""
    return None if sampler is None else SAMPLERS[sampler](labels_of(dataset))

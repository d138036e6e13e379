"""What the data stage does to labels and targets: data.label_noise (a fraction of the training labels replaced by
another class, from a random stream of its own) and a regression's target statistics (data.target_stats)."""
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from trainer.data.splits import Splits, labels_of
from trainer.logs import log

LABEL_NOISE_STREAM = 0x1ABE1  # mixed with `seed`: label noise draws from a random stream of its own


class Relabeled(Dataset):
    """`dataset` with its labels replaced by `targets` (data.label_noise on data not held in tensors)."""

    def __init__(self, dataset: Dataset, targets: torch.Tensor):
        self.dataset, self.targets = dataset, targets

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i][0], self.targets[i]


def noisy_labels(labels: torch.Tensor, *, fraction: float, num_classes: int, seed: int) -> torch.Tensor:
    """`labels` with exactly round(fraction * n) of them, chosen by seed, each replaced by a class drawn uniformly
    from the other num_classes - 1 (a shift of 1..num_classes-1, modulo num_classes). The draws come from a stream
    of their own, so the run's other random numbers are those of a clean run."""
    rng = np.random.default_rng([LABEL_NOISE_STREAM, seed % 2**64])  # entropy must be >= 0
    chosen = torch.from_numpy(rng.permutation(len(labels))[:round(fraction * len(labels))])
    shift = torch.from_numpy(rng.integers(1, num_classes, size=len(chosen)))
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % num_classes
    return noisy


def with_label_noise(splits: Splits, fraction: float, *, num_classes: int, seed: int) -> Splits:
    """data.label_noise: the training split with a `fraction` of its labels wrong; val and test stay clean."""
    if not fraction:
        return splits
    labels = noisy_labels(labels_of(splits.train).long(), fraction=fraction, num_classes=num_classes, seed=seed)
    train = (TensorDataset(splits.train.tensors[0], labels) if isinstance(splits.train, TensorDataset)
             else Relabeled(splits.train, labels))
    log.info(f"data.label_noise={fraction}: {int((labels != labels_of(splits.train)).sum())} of {len(labels)} "
             "training labels replaced by another class")
    return replace(splits, train=train)


def target_statistics(splits: Splits) -> dict[str, list[float] | None]:
    """data.target_stats of a regression: the training targets' mean and std in each loss space of trainer.losses
    (identity for MSE, MAE and Huber; log1p for MSLE, None when a target is -1 or below), as plain floats."""
    y = labels_of(splits.train).double()
    stats = lambda values: [values.mean().item(), max(values.std().item(), 1e-12)]
    return {"identity": stats(y), "log1p": stats(torch.log1p(y)) if bool((y > -1).all()) else None}

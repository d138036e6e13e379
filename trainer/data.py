"""Datasets and the loaders that feed them to the loop.

A data config's `source` builds a `Splits` of three datasets. Tensors that already sit in memory are served by
`TensorLoader` (one indexing op per batch, no per-sample Python loop); anything else by a torch DataLoader.
"""
import itertools
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from trainer.errors import UserError


@dataclass
class Splits:
    train: Dataset | None  # None: left out (mode=eval builds the test split's loader only)
    val: Dataset | None
    test: Dataset
    classes: list | None = None  # class names, for datasets that have them (image folders, torchvision sets)


def split_indices(n, val_fraction, test_fraction, seed):
    """Shuffle 0..n-1 once with `seed` and cut off test, then val; the rest trains. Same seed, same split.
    A fraction of None leaves that part empty, for datasets that bring their own val or test split."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if value is not None and not 0 < value < 1:
            raise UserError(f"data.source.{key}={value} must be between 0 and 1 (exclusive)")
    val_fraction, test_fraction = val_fraction or 0, test_fraction or 0
    if val_fraction + test_fraction >= 1:
        raise UserError("data.source.val_fraction + data.source.test_fraction must leave data to train on (sum < 1)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def split_tensors(x, y, val_fraction, test_fraction, seed):
    """Shuffle once with `seed` and cut into train/val/test, so the same seed always gives the same split."""
    parts = split_indices(len(y), val_fraction, test_fraction, seed)
    train, val, test = (TensorDataset(x[idx], y[idx]) for idx in parts)
    return Splits(train=train, val=val, test=test)


def count_classes(num_classes, splits):
    """The number of classes: `data.num_classes`, or with `null` as many as the dataset names (image_folder reads
    them from its folders); a number that contradicts the dataset's own count is a UserError."""
    if splits.classes is None:
        if num_classes is None:
            raise UserError("data.num_classes=null needs a dataset that names its classes: set data.num_classes")
        return num_classes
    if num_classes is not None and num_classes != len(splits.classes):
        raise UserError(f"data.num_classes={num_classes} but the dataset has {len(splits.classes)} classes: "
                        "set data.num_classes=null to use the dataset's count")
    return len(splits.classes)


def standardize(x, reference):
    """Scale features to zero mean and unit variance using statistics of `reference` (the training split)."""
    dims = [0] + list(range(2, x.dim())) if x.dim() > 2 else [0]
    mean, std = reference.mean(dim=dims, keepdim=True), reference.std(dim=dims, keepdim=True)
    return (x - mean) / std.clamp_min(1e-6)


def digits(*, val_fraction, test_fraction, seed):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixel values are 0..16
    y = torch.tensor(bunch.target, dtype=torch.long)
    return split_tensors(x, y, val_fraction, test_fraction, seed)


def iris(*, val_fraction, test_fraction, seed):
    from sklearn.datasets import load_iris

    bunch = load_iris()
    x = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.long)
    splits = split_tensors(x, y, val_fraction, test_fraction, seed)
    # measurements are in cm on different scales; standardise with the training split's statistics only
    reference = splits.train.tensors[0]
    for part in (splits.train, splits.val, splits.test):
        part.tensors = (standardize(part.tensors[0], reference), part.tensors[1])
    return splits


def synthetic(*, shape, num_classes, num_samples, noise, val_fraction, test_fraction, seed):
    """Each class is a fixed random pattern; a sample is its class pattern plus Gaussian noise of std `noise`."""
    if num_classes < 2 or num_samples < num_classes:
        raise UserError("data=synthetic needs data.num_classes >= 2 and data.source.num_samples >= data.num_classes")
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randn(num_classes, *shape, generator=generator)
    y = torch.arange(num_samples) % num_classes
    x = patterns[y] + noise * torch.randn(num_samples, *shape, generator=generator)
    return split_tensors(x, y, val_fraction, test_fraction, seed)


class TensorLoader:
    """Batches of in-memory tensors, cut by slicing a (shuffled) index: what a hand-written loop would do.

    A DataLoader over a TensorDataset indexes one sample at a time in Python and collates them, which costs
    more than a small model's whole step. On a GPU the tensors are moved there once, so a batch costs no copy.
    Under torchrun each rank serves every `world_size`-th sample of the (shared-seed) order, like a
    DistributedSampler; when shuffling (training) the order is padded by wrapping around so every rank takes the
    same number of steps, which DistributedDataParallel needs; otherwise (evaluation) the split is exact.
    """

    def __init__(self, dataset, *, batch_size, shuffle, generator=None, device=None, rank=0, world_size=1):
        self.tensors = tuple(t.to(device) for t in dataset.tensors) if device is not None else dataset.tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
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
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            if self.shuffle:
                total = self._num_samples() * self.world_size
                order = order.repeat(-(-total // n))[:total]
            order = order[self.rank::self.world_size]
        return order.to(self.tensors[0].device)

    def __iter__(self):
        return self.batches()

    def batches(self, skip=0):
        """This rank's batches for one pass, leaving out the first `skip`."""
        order = self._order()
        for start in range(skip * self.batch_size, self._num_samples(), self.batch_size):
            if order is None:  # contiguous slices are views: no copy at all
                yield [t[start:start + self.batch_size] for t in self.tensors]
            else:
                idx = order[start:start + self.batch_size]
                yield [t[idx] for t in self.tensors]


def make_loader(dataset, *, batch_size, shuffle, num_workers=0, seed=0, pin_memory=False, device=None, rank=0,
                world_size=1):
    """The loader for one split; shuffling order follows `seed` so a run is reproducible. In-memory tensors are
    moved to a CUDA `device` once; `rank`/`world_size` shard the split for a torchrun run (trainer/distributed.py)."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(dataset, TensorDataset):
        on_gpu = device if device is not None and torch.device(device).type == "cuda" else None
        return TensorLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, device=on_gpu, rank=rank,
                            world_size=world_size)
    sampler = None
    if world_size > 1:
        # evaluation splits exactly (no sample twice); training pads so every rank takes as many steps
        sampler = (DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed) if shuffle
                   else range(rank, len(dataset), world_size))
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler, num_workers=num_workers,
        generator=generator, pin_memory=pin_memory, persistent_workers=num_workers > 0,
    )


def epoch_batches(loader, seed, epoch, skip=0):
    """The loader's batches for `epoch`, leaving out the first `skip` (those a run interrupted mid-epoch already
    trained on). The shuffle order depends only on (seed, epoch), not on what ran before, so a resumed run sees
    exactly the batches an uninterrupted one would."""
    generator = getattr(loader, "generator", None)
    if generator is not None:
        generator.manual_seed(seed * 100_003 + epoch)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # a DistributedSampler (torchrun) seeds its shuffle with seed + epoch
        sampler.set_epoch(epoch)
    if isinstance(loader, TensorLoader):
        return loader.batches(skip)
    return itertools.islice(loader, skip, None)  # a DataLoader still loads the skipped batches, once


def labels_of(dataset):
    """All integer labels of a dataset, for the range check before training."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [dataset[i][1] for i in range(len(dataset))]
    return torch.as_tensor(targets)

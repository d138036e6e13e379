"""A dataset's three splits and how they are cut: `Splits`, the seeded shuffle that cuts a dataset into train,
validation and test, the class count, and the checks that the splits can train and measure a model."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset, TensorDataset

from trainer.errors import UserError
from trainer.metrics import REGRESSION

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


@dataclass
class Splits:
    train: Dataset | None  # None: left out (mode=eval builds the test split's loader only)
    val: Dataset | None
    test: Dataset
    classes: list | None = None  # class names, for datasets that have them (image folders, torchvision sets)
    image_size: int | None = None  # image sources: the side images are decoded to (data.image_size, or their own)
    augment: object = None  # image sources: a random transform of a training input, applied on access
    # config keys the source decided from the data (data=csv: task, split, shape, num_classes, preprocessing), filled
    # into the run's config by the data stage where the config leaves them null
    facts: dict = field(default_factory=dict)


SPLIT_METHODS = ("stratified", "random")  # data.split
MIN_TO_STRATIFY = 3  # samples a class needs for one in each of train, val and test


def check_split_fits_task(method: str | None, task: str | None) -> None:
    """data.split is a known method, and stratified only for classes (regression targets have none). None: the
    source decides (data=csv: by the task its target column has)."""
    if method is not None and method not in SPLIT_METHODS:
        raise UserError(f"data.split={method} is not known: use data.split=stratified (each class cut in the same "
                        "fractions) or data.split=random")
    if method == "stratified" and task == REGRESSION:
        raise UserError("data.split=stratified cuts each class in the same fractions, and regression targets have no "
                        "classes: use data.split=random")


def split_indices(n: int, val_fraction: float | None, test_fraction: float | None, seed: int, *,
                  labels: torch.Tensor | None = None, method: str = "random"
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) indices into 0..n-1; the same seed always gives the same split. A fraction of None leaves
    that part empty, for datasets that bring their own val or test split.

    method "random" shuffles 0..n-1 once with `seed` and cuts off test, then val (how losslab split before it
    stratified, and still splits regression data). "stratified" (`labels` [n] given) cuts every class in the same
    fractions (stratified_indices), so a rare class is not left out of validation or test by chance.

    Raises:
        UserError: a fraction outside (0, 1), fractions that leave nothing to train on, or an empty val or test split.
    """
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if value is not None and not 0 < value < 1:
            raise UserError(f"data.source.{key}={value} must be between 0 and 1 (exclusive)")
    val_fraction, test_fraction = val_fraction or 0, test_fraction or 0
    if val_fraction + test_fraction >= 1:
        raise UserError("data.source.val_fraction + data.source.test_fraction must leave data to train on (sum < 1)")
    if method == "stratified" and labels is not None:
        parts = stratified_indices(torch.as_tensor(labels), val_fraction, test_fraction, seed)
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_val, n_test = round(n * val_fraction), round(n * test_fraction)
        parts = order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]
    for key, value, taken in (("val_fraction", val_fraction, parts[1]), ("test_fraction", test_fraction, parts[2])):
        if value and not len(taken):
            raise UserError(f"data.source.{key}={value} of {n} samples leaves the {key.split('_')[0]} split empty: "
                            f"set data.source.{key} to at least {1 / n:.3g} or give the dataset more samples")
    if not len(parts[0]):
        raise UserError(f"data.source.val_fraction and data.source.test_fraction leave none of {n} samples to train "
                        "on: lower them or give the dataset more samples")
    return parts


def stratified_indices(labels: torch.Tensor, val_fraction: float, test_fraction: float, seed: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each class's samples shuffled with `seed` (one generator, classes in label order) and cut into test, val and
    train by class_counts; each split's indices sorted, so a split keeps the dataset's order."""
    generator = torch.Generator().manual_seed(seed)
    classes, sizes = labels.unique(sorted=True, return_counts=True)
    counts = class_counts(sizes.tolist(), val_fraction, test_fraction)
    train, val, test = [], [], []
    for label, (n_val, n_test) in zip(classes.tolist(), counts):
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        test.append(members[:n_test])
        val.append(members[n_test:n_test + n_val])
        train.append(members[n_test + n_val:])
    return tuple(torch.cat(part).sort().values for part in (train, val, test))


def class_counts(sizes: list[int], val_fraction: float, test_fraction: float) -> list[tuple[int, int]]:
    """(val, test) samples of each class, for classes of `sizes` samples. Each split takes as many samples as a random
    split would (round(n * fraction)), shared among the classes in proportion to their sizes by largest remainders
    (Hamilton's method; ties to the lower label); then every class with MIN_TO_STRATIFY samples or more gets at
    least one in each split that is carved, and every class keeps at least one to train on."""
    val, test = (apportioned(sizes, fraction) for fraction in (val_fraction, test_fraction))
    counts = []
    for size, n_val, n_test in zip(sizes, val, test):
        if size >= MIN_TO_STRATIFY:
            n_val, n_test = max(n_val, int(val_fraction > 0)), max(n_test, int(test_fraction > 0))
        while n_val + n_test >= size and n_val + n_test > 0:  # one left to train on, taken from the larger
            n_val, n_test = (n_val, n_test - 1) if n_test > n_val else (n_val - 1, n_test)
        counts.append((n_val, n_test))
    return counts


def apportioned(sizes: list[int], fraction: float) -> list[int]:
    """round(sum(sizes) * fraction) shared among `sizes` in proportion, by largest remainders."""
    quotas = [size * fraction for size in sizes]
    counts = [int(quota) for quota in quotas]
    by_remainder = sorted(range(len(sizes)), key=lambda k: (counts[k] - quotas[k], k))
    for k in by_remainder[:round(sum(sizes) * fraction) - sum(counts)]:
        counts[k] += 1
    return counts


def split_tensors(x: torch.Tensor, y: torch.Tensor, val_fraction: float | None, test_fraction: float | None,
                  seed: int, *, method: str = "random") -> "Splits":
    """x [n, ...] and labels or targets y [n, ...] cut into train/val/test by split_indices (stratified by y with
    method="stratified"), so the same seed always gives the same split."""
    parts = split_indices(len(y), val_fraction, test_fraction, seed, labels=y, method=method)
    train, val, test = (TensorDataset(x[idx], y[idx]) for idx in parts)
    return Splits(train=train, val=val, test=test)


def count_classes(num_classes: int | None, splits: Splits) -> int:
    """The number of classes: `data.num_classes`, or with `null` as many as the dataset names (image_folder reads
    them from its folders); a number that contradicts the dataset's own count is a UserError."""
    if splits.classes is None:
        if num_classes is None:
            raise UserError("data.num_classes=null needs a dataset that names its classes: set data.num_classes")
    elif num_classes is not None and num_classes != len(splits.classes):
        raise UserError(f"data.num_classes={num_classes} but the dataset has {len(splits.classes)} classes: "
                        "set data.num_classes=null to use the dataset's count")
    count = len(splits.classes) if splits.classes is not None else num_classes
    if count < 2:
        raise UserError(f"data.num_classes={count}: a classifier needs at least two classes")
    return count


def check_splits(splits: Splits, names: Sequence[str], *, classifies: bool = True) -> None:
    """Splits a model can learn from and be measured on: none of `names` empty, and for a classifier at least two
    classes among the training labels (one class "trains" to accuracy 1.0)."""
    for name in names:
        if getattr(splits, name) is None or len(getattr(splits, name)) == 0:
            raise UserError(f"the {name} split is empty: give it samples (data.source.{name}_fraction of a larger "
                            "dataset, or a dataset with more samples)")
    if "train" in names and classifies:
        labels = labels_of(splits.train)
        if len(labels.unique()) < 2:
            raise UserError(f"the train split holds samples of one class only (label {int(labels[0])}): a classifier "
                            "needs at least two; check data.root and data.source")


def labels_of(dataset: Dataset) -> torch.Tensor:
    """All integer labels of a dataset, for the range check before training."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [dataset[i][1] for i in range(len(dataset))]
    return torch.as_tensor(targets)


class MapInputs(Dataset):
    """`dataset` with `function` applied to each sample's input on access (normalisation, augmentation)."""

    def __init__(self, dataset: Dataset, function: Callable[[torch.Tensor], torch.Tensor]):
        self.dataset, self.function = dataset, function

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return self.function(x), y

    @property
    def targets(self) -> torch.Tensor:
        return labels_of(self.dataset)

"""torchvision's datasets with a train/test split (CIFAR-10, MNIST, Fashion-MNIST, ...): downloaded into data.root
when data.download allows it, else one sentence naming data.root and data.download."""
from collections.abc import Callable
from pathlib import Path

import torch

from trainer.config.paths import check_folder
from trainer.data.images import make_splits
from trainer.data.splits import Splits, split_indices
from trainer.errors import UserError, first_line


def open_torchvision(dataset: Callable, root: str, download: bool, train: bool) -> object:
    """One split of a torchvision dataset, or a one-sentence error naming data.root and data.download."""
    name = getattr(dataset, "func", dataset).__name__
    try:
        return dataset(root=str(root), train=train, download=download)
    except (RuntimeError, OSError) as error:  # torchvision: RuntimeError if not found, URLError/OSError offline
        if not download:
            raise UserError(f"data.root={root} holds no {name} and data.download=false: set data.download=true "
                            f"or point data.root at a folder that holds it") from None
        raise UserError(f"data.root={root} holds no {name} and data.download=true could not fetch it "
                        f"({first_line(error)}): "
                        f"copy the dataset into data.root from a machine with internet, or point data.root at a copy"
                        ) from None


def torchvision_dataset(*, dataset: Callable, root: str, download: bool, channels: int, image_size: int | None,
                        augment: bool, val_fraction: float, seed: int, split: str = "random") -> Splits:
    """A torchvision dataset with a train/test split (`dataset(root, train, download)`: CIFAR10, MNIST, ...).
    Val is carved from the train split by `seed`; test is the dataset's own test split."""
    if not root:
        raise UserError("data.root is not set: point it at a folder for the dataset, e.g. data.root=data")
    if Path(root).expanduser().exists():  # a missing one is made by the download
        check_folder(root, "data.root", fix="point data.root at the folder that holds the dataset (or will)")
    train_all = open_torchvision(dataset, root, download, train=True)
    test = open_torchvision(dataset, root, download, train=False)
    train_idx, val_idx, _ = split_indices(len(train_all), val_fraction, None, seed,
                                          labels=torch.as_tensor(train_all.targets), method=split)
    parts = {"train": (train_all, train_idx), "val": (train_all, val_idx), "test": (test, range(len(test)))}
    return make_splits(parts, classes=train_all.classes, channels=channels, image_size=image_size, augment=augment,
                       seed=seed)

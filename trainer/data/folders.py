"""Your own images: a folder of class subfolders, in either layout (root/train/<class>/ with optional val/ and
test/, or root/<class>/ split by seed). Class names are the subfolder names, sorted."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from trainer.config.paths import check_folder
from trainer.data.images import PILLOW_LIMIT, make_splits, upright_size
from trainer.data.scan import (IMAGE_EXTENSIONS, Skipped, class_folders, image_files, log_skipped,
                               unique_samples)
from trainer.data.splits import Splits, split_indices
from trainer.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

SPLIT_FOLDERS = ("train", "val", "test")  # the layout with splits of its own, in the order duplicates are kept


class ImageFiles(Dataset):
    """(path, label) samples of image files: a sample is its path (trainer/data/images.py:FileDecoder decodes it, within
    `max_pixels`). Labels index the class list, so train/, val/ and test/ agree."""

    def __init__(self, samples: list[tuple[str, int]], *, max_pixels: int = PILLOW_LIMIT):
        self.samples, self.max_pixels = samples, max_pixels
        self.targets = torch.tensor([label for _, label in samples], dtype=torch.long)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]

    def size_of(self, i: int) -> tuple[int, int]:
        """(width, height) of image i as it is shown, read from its header alone."""
        return upright_size(self.samples[i][0], self.max_pixels)


def folder_classes(folder: Path, root: Path, skipped: Skipped) -> list[str]:
    """The sorted class subfolders of `folder`; at least two, or one sentence saying what data.root should be."""
    check_folder(folder, "data.root", fix="point data.root at a folder of class subfolders")
    classes = class_folders(folder, skipped)
    if not classes:
        raise UserError(f"data.root={root} has no class subfolders in {folder} (image_folder has no data.download): "
                        f"put each class's images in data.root/<class>/ or data.root/train/<class>/")
    if len(classes) == 1:
        raise UserError(f"data.root={root} has one class folder, {classes[0]}, and a classifier needs at least two: if "
                        f"{folder / classes[0]} holds your class folders, set data.root={folder / classes[0]}")
    return classes


def folder_samples(folder: Path, classes: Sequence[str], root: Path, skipped: Skipped) -> list[tuple[str, int]]:
    """(path, label) of every image under folder/<class>/ for the class list (a class missing here is allowed: a
    val/ folder may lack one)."""
    return [(path, label) for label, name in enumerate(classes) if (folder / name).is_dir()
            for path in image_files(folder / name, root, skipped)]


def check_classes(samples: Sequence[tuple[str, int]], classes: Sequence[str], folder: Path, root: Path) -> None:
    """A class folder without any image is one sentence naming it (the model would get an output no sample ever
    trains)."""
    counts = torch.bincount(torch.tensor([label for _, label in samples], dtype=torch.long), minlength=len(classes))
    if counts.sum() == 0:
        raise UserError(f"data.root={root} has class subfolders but no images ({', '.join(IMAGE_EXTENSIONS)}) in them")
    empty = [name for name, count in zip(classes, counts) if count == 0]
    if empty:
        raise UserError(f"data.root={root}: the class folder {folder / empty[0]} holds no images "
                        f"({', '.join(IMAGE_EXTENSIONS)}): add its images or remove the folder")


def check_own_split(samples: Sequence[tuple[str, int]], root: Path, name: str) -> None:
    """root/val or root/test as it is; one that holds no images is one sentence with both ways out."""
    if not samples:
        raise UserError(f"data.root={root}: {root / name} holds no images in class folders: add them, or remove "
                        f"{name}/ to carve the {name} split from train/ (data.source.{name}_fraction)")


def found_samples(root: Path, top: Path, classes: Sequence[str], skipped: Skipped) -> dict[str, list[tuple[str, int]]]:
    """{"train": samples, and "val"/"test" where root has a folder of that name next to train/}, each file once."""
    names = [name for name in SPLIT_FOLDERS[1:] if top != root and (root / name).is_dir()]
    parts = {"train": folder_samples(top, classes, root, skipped),
             **{name: folder_samples(root / name, classes, root, skipped) for name in names}}
    parts = unique_samples(parts, classes, root, skipped)
    log_skipped(skipped, root)
    check_classes(parts["train"], classes, top, root)
    for name in names:
        check_own_split(parts[name], root, name)
    return parts


def image_folder(*, root: str, channels: int, image_size: int | None, augment: bool, val_fraction: float,
                 test_fraction: float, seed: int, split: str = "random", max_pixels: int = PILLOW_LIMIT) -> Splits:
    """Images in class subfolders, in one of two layouts:

    - root/train/<class>/*, with root/val/<class>/* and/or root/test/<class>/*: a missing val/ or test/ is carved
      from train/ by `seed` (val_fraction, test_fraction);
    - root/<class>/*: split into train/val/test by `seed`.
    Class names (and so data.num_classes) are the subfolder names of train/ (or root), sorted. Which files are read
    (hidden entries, links, non-regular files, duplicates) is trainer/data/scan.py's; an image over `max_pixels`
    (data.max_image_pixels) is one sentence naming it.
    """
    if not root:
        raise UserError("data=image_folder needs data.root: point it at a folder of class subfolders")
    several = " (to train on several folders one after another, add -m: train -m data.root=A,B)" if "," in str(
        root) else ""
    root = check_folder(root, "data.root", fix=f"point data.root at a folder of class subfolders{several}")
    train_dir = root / "train"
    top = train_dir if train_dir.is_dir() else root
    skipped = Skipped()
    classes = folder_classes(top, root, skipped)
    found = found_samples(root, top, classes, skipped)
    own = {name: ImageFiles(samples, max_pixels=max_pixels) for name, samples in found.items() if name != "train"}
    base = ImageFiles(found["train"], max_pixels=max_pixels)
    # val/ and test/ next to train/ are used as they are; a missing one is carved from train/
    train_idx, val_idx, test_idx = split_indices(
        len(base), None if "val" in own else val_fraction, None if "test" in own else test_fraction, seed,
        labels=base.targets, method=split)
    parts = {"train": (base, train_idx)}
    for name, carved in (("val", val_idx), ("test", test_idx)):
        parts[name] = (own[name], range(len(own[name]))) if name in own else (base, carved)
    return make_splits(parts, classes=classes, channels=channels, image_size=image_size, augment=augment, seed=seed)

"""Your own images: a folder of class subfolders, in either layout (root/train/<class>/ with optional val/ and
test/, or root/<class>/ split by seed). Class names are the subfolder names, sorted."""
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset, pil_loader

from trainer.config.paths import check_folder, unreadable_folder
from trainer.data.images import make_splits, unreadable
from trainer.data.splits import Splits, split_indices
from trainer.errors import UserError


class ImageFiles(Dataset):
    """Every image file under root/<class>/ for the given class list (a class missing here is allowed: a val/ folder
    may lack one). Labels follow the list's order, so train/, val/ and test/ agree; decoding happens on access."""

    def __init__(self, root, classes):
        class_to_idx = {name: index for index, name in enumerate(classes)}
        self.samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
        self.targets = torch.tensor([label for _, label in self.samples], dtype=torch.long)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        try:
            return pil_loader(path), label
        except (OSError, SyntaxError, ValueError) as error:  # PIL: truncated data, not an image, a broken header
            raise unreadable(path, error) from None

    def size_of(self, i):
        """(width, height) of image i, read from its header alone."""
        path = self.samples[i][0]
        try:
            with Image.open(path) as image:
                return image.size
        except (OSError, SyntaxError, ValueError) as error:
            raise unreadable(path, error) from None


def folder_classes(folder, root):
    """The sorted class subfolders of `folder`; at least two, or one sentence saying what data.root should be."""
    check_folder(folder, "data.root", fix="point data.root at a folder of class subfolders")
    try:
        classes, _ = find_classes(str(folder))
    except FileNotFoundError:
        classes = []
    if not classes:
        raise UserError(f"data.root={root} has no class subfolders in {folder} (image_folder has no data.download): "
                        f"put each class's images in data.root/<class>/ or data.root/train/<class>/")
    if len(classes) == 1:
        raise UserError(f"data.root={root} has one class folder, {classes[0]}, and a classifier needs at least two: if "
                        f"{folder / classes[0]} holds your class folders, set data.root={folder / classes[0]}")
    return classes


def class_files(folder, classes, root):
    """The images of every class folder; a class folder without any is one sentence naming it (the model would
    get an output no sample ever trains)."""
    files = ImageFiles(folder, classes)
    counts = torch.bincount(files.targets, minlength=len(classes))
    empty = [name for name, count in zip(classes, counts) if count == 0]
    for name in empty:  # os.walk skips a folder it may not list as if it were empty: say which it is
        if (why := unreadable_folder(folder / name)) is not None:
            raise UserError(f"data.root={root}: the class folder {folder / name} cannot be read ({why}): give "
                            f"yourself permission to read it (chmod -R u+rX '{folder / name}') or remove it")
    if counts.sum() == 0:
        raise UserError(f"data.root={root} has class subfolders but no images ({', '.join(IMG_EXTENSIONS)}) in them")
    if empty:
        raise UserError(f"data.root={root}: the class folder {folder / empty[0]} holds no images "
                        f"({', '.join(IMG_EXTENSIONS)}): add its images or remove the folder")
    return files


def own_split(root, name, classes):
    """root/val or root/test as it is; one that holds no images is one sentence with both ways out."""
    files = ImageFiles(root / name, classes)
    if len(files) == 0:
        raise UserError(f"data.root={root}: {root / name} holds no images in class folders: add them, or remove "
                        f"{name}/ to carve the {name} split from train/ (data.source.{name}_fraction)")
    return files


def image_folder(*, root: str, channels: int, image_size: int | None, augment: bool, val_fraction: float,
                 test_fraction: float, seed: int, split: str = "random") -> Splits:
    """Images in class subfolders, in one of two layouts:

    - root/train/<class>/*, with root/val/<class>/* and/or root/test/<class>/*: a missing val/ or test/ is carved
      from train/ by `seed` (val_fraction, test_fraction);
    - root/<class>/*: split into train/val/test by `seed`.
    Class names (and so data.num_classes) are the subfolder names of train/ (or root), sorted.
    """
    if not root:
        raise UserError("data=image_folder needs data.root: point it at a folder of class subfolders")
    root = check_folder(root, "data.root", fix="point data.root at a folder of class subfolders")
    train_dir = root / "train"
    top = train_dir if train_dir.is_dir() else root
    classes = folder_classes(top, root)
    base = class_files(top, classes, root)
    # val/ and test/ next to train/ are used as they are; a missing one is carved from train/
    own = {name: own_split(root, name, classes)
           for name in ("val", "test") if top is train_dir and (root / name).is_dir()}
    train_idx, val_idx, test_idx = split_indices(
        len(base), None if "val" in own else val_fraction, None if "test" in own else test_fraction, seed,
        labels=base.targets, method=split)
    parts = {"train": (base, train_idx)}
    for name, carved in (("val", val_idx), ("test", test_idx)):
        parts[name] = (own[name], range(len(own[name]))) if name in own else (base, carved)
    return make_splits(parts, classes=classes, channels=channels, image_size=image_size, augment=augment, seed=seed)

"""Image datasets read from disk: torchvision's (CIFAR-10, MNIST, Fashion-MNIST, ...) and a folder of class
subfolders. Like the sources in trainer/data.py they return a `Splits`.

Every image is decoded to a float tensor in [0, 1] of `data.shape` = [channels, image_size, image_size]. The
normalisation a pretrained network expects belongs to that model (trainer/transfer.py), so the same data config
serves small_cnn and resnet18_transfer alike. `augment` adds a random crop and flip to the train split only;
`cache` decodes each split once into memory, after which `TensorLoader` serves it without per-sample Python work.
"""
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset, pil_loader
from torchvision.transforms import v2

from trainer.data import Splits, labels_of, split_indices
from trainer.errors import UserError, first_line

PIL_MODES = {1: "L", 3: "RGB"}  # the channels an image is converted to


class ToMode:
    """Convert a PIL image to grayscale ("L") or RGB, so every sample has data.channels channels."""

    def __init__(self, mode):
        self.mode = mode

    def __call__(self, image):
        return image.convert(self.mode)


def decoder(channels, image_size):
    """PIL image -> float tensor [channels, image_size, image_size] in [0, 1]: shorter side resized, centre cropped."""
    if channels not in PIL_MODES:
        raise UserError(f"data.channels={channels} is not supported for images: use 1 (grayscale) or 3 (RGB)")
    if not isinstance(image_size, int) or image_size < 1:
        raise UserError(f"data.image_size={image_size} is invalid: use a whole number of pixels, e.g. 32 or 224")
    return v2.Compose([
        ToMode(PIL_MODES[channels]), v2.ToImage(), v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size),
        v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor(),
    ])


def augmenter(image_size):
    """Random crop (after padding by an eighth, reflected) and horizontal flip of a decoded image tensor."""
    return v2.Compose([
        v2.RandomCrop(image_size, padding=max(image_size // 8, 1), padding_mode="reflect"),
        v2.RandomHorizontalFlip(),
    ])


class Transformed(Dataset):
    """The samples `indices` of `base`, each image passed through `transform`. Train and val can share a base (val
    carved from torchvision's train set) and still differ in their transform (augmentation for train only)."""

    def __init__(self, base, indices, transform):
        self.base, self.indices, self.transform = base, torch.as_tensor(indices, dtype=torch.long), transform

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        image, label = self.base[int(self.indices[i])]
        return self.transform(image), label

    @property
    def targets(self):
        return labels_of(self.base)[self.indices]


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
        return pil_loader(path), label


def decode_all(dataset, num_workers):
    """Decode every sample once into one float tensor: data.cache=true."""
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=256, num_workers=num_workers):
        xs.append(x)
        ys.append(torch.as_tensor(y, dtype=torch.long))
    return TensorDataset(torch.cat(xs), torch.cat(ys))


def make_splits(parts, *, classes, channels, image_size, augment, cache, num_workers):
    """Splits from (base dataset, indices) per split: decoding, train-only augmentation and the optional cache."""
    decode = decoder(channels, image_size)
    splits = {}
    for name, (base, indices) in parts.items():
        if cache:
            splits[name] = decode_all(Transformed(base, indices, decode), num_workers)
            if augment and name == "train":  # random each epoch, so applied on access to the cached tensors
                splits[name] = Transformed(splits[name], range(len(splits[name])), augmenter(image_size))
        else:
            random = augment and name == "train"
            splits[name] = Transformed(base, indices, v2.Compose([decode, augmenter(image_size)]) if random else decode)
    return Splits(train=splits["train"], val=splits["val"], test=splits["test"], classes=list(classes))


def open_torchvision(dataset, root, download, train):
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


def torchvision_dataset(*, dataset, root, download, channels, image_size, augment, cache, num_workers, val_fraction,
                        seed):
    """A torchvision dataset with a train/test split (`dataset(root, train, download)`: CIFAR10, MNIST, ...).
    Val is carved from the train split by `seed`; test is the dataset's own test split."""
    if not root:
        raise UserError("data.root is not set: point it at a folder for the dataset, e.g. data.root=data")
    train_all = open_torchvision(dataset, root, download, train=True)
    test = open_torchvision(dataset, root, download, train=False)
    train_idx, val_idx, _ = split_indices(len(train_all), val_fraction, None, seed)
    parts = {"train": (train_all, train_idx), "val": (train_all, val_idx), "test": (test, range(len(test)))}
    return make_splits(parts, classes=train_all.classes, channels=channels, image_size=image_size, augment=augment,
                       cache=cache, num_workers=num_workers)


def folder_classes(folder, root):
    try:
        classes, _ = find_classes(str(folder))
    except FileNotFoundError:
        classes = []
    if not classes:
        raise UserError(f"data.root={root} has no class subfolders in {folder} (image_folder has no data.download): "
                        f"put each class's images in data.root/<class>/ or data.root/train/<class>/")
    return classes


def image_folder(*, root, channels, image_size, augment, cache, num_workers, val_fraction, test_fraction, seed):
    """Images in class subfolders, in one of two layouts:

    - root/train/<class>/*, with root/val/<class>/* and/or root/test/<class>/*: a missing val/ or test/ is carved
      from train/ by `seed` (val_fraction, test_fraction);
    - root/<class>/*: split into train/val/test by `seed`.
    Class names (and so data.num_classes) are the subfolder names of train/ (or root), sorted.
    """
    if not root:
        raise UserError("data=image_folder needs data.root: point it at a folder of class subfolders")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.root={root} does not exist: point data.root at a folder of class subfolders")
    train_dir = root / "train"
    top = train_dir if train_dir.is_dir() else root
    classes = folder_classes(top, root)
    base = ImageFiles(top, classes)
    if len(base) == 0:
        raise UserError(f"data.root={root} has class subfolders but no images ({', '.join(IMG_EXTENSIONS)}) in them")
    # val/ and test/ next to train/ are used as they are; a missing one is carved from train/
    own = {name: ImageFiles(root / name, classes)
           for name in ("val", "test") if top is train_dir and (root / name).is_dir()}
    train_idx, val_idx, test_idx = split_indices(
        len(base), None if "val" in own else val_fraction, None if "test" in own else test_fraction, seed)
    parts = {"train": (base, train_idx)}
    for name, carved in (("val", val_idx), ("test", test_idx)):
        parts[name] = (own[name], range(len(own[name]))) if name in own else (base, carved)
    return make_splits(parts, classes=classes, channels=channels, image_size=image_size, augment=augment, cache=cache,
                       num_workers=num_workers)

"""Image datasets read from disk: torchvision's (CIFAR-10, MNIST, Fashion-MNIST, ...) and a folder of class
subfolders. Like the sources in trainer/data.py they return a `Splits`.

Every image is decoded to a float tensor in [0, 1] of `data.shape` = [channels, image_size, image_size]; with
`data.image_size: null` the images' own size (trainer/assemble.py first asks a pretrained model for the size its
weights expect). Normalisation, caching and label noise are the data stage's (trainer/data.py), the same for every
source; `augment` is returned with the splits as the random transform of a training image.
"""
import statistics
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset, pil_loader
from torchvision.transforms import v2

from trainer.data import Splits, labels_of, split_indices
from trainer.errors import UserError, first_line
from trainer.logs import log

PIL_MODES = {1: "L", 3: "RGB"}  # the channels an image is converted to
SIZE_SAMPLES = 100  # training images whose size data.image_size=null reads


class UnreadableImage(UserError):
    """A file PIL cannot decode (truncated, or not an image at all), named with the fix. A DataLoader worker hands it
    to the main process rebuilt from one string: "Caught UnreadableImage in DataLoader worker process 0.", the
    worker's traceback, and last "trainer.images.UnreadableImage: <the sentence>"; that keeps only the sentence."""

    def __init__(self, message):
        if message.startswith(f"Caught {type(self).__name__} "):
            message = message.rstrip().splitlines()[-1].removeprefix(f"{__name__}.{type(self).__name__}: ")
        super().__init__(message)


def unreadable(path, error):
    reason = "no image format PIL knows" if isinstance(error, UnidentifiedImageError) else first_line(error)
    return UnreadableImage(f"{path} cannot be read as an image ({reason}): delete it or replace it with a readable "
                           "copy")


class ToMode:
    """Convert a PIL image to grayscale ("L") or RGB, so every sample has data.channels channels."""

    def __init__(self, mode):
        self.mode = mode

    def __call__(self, image):
        return image.convert(self.mode)


def check_image_settings(channels, image_size):
    if channels not in PIL_MODES:
        raise UserError(f"data.channels={channels} is not supported for images: use 1 (grayscale) or 3 (RGB)")
    if image_size is not None and (not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1):
        raise UserError(f"data.image_size={image_size} is invalid: use a whole number of pixels, e.g. 32 or 224, or "
                        "null for the images' own size")


def decoder(channels, image_size):
    """PIL image -> float tensor [channels, image_size, image_size] in [0, 1]: shorter side resized (not at all
    when it is image_size already), centre cropped."""
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


def own_size(base, indices, seed):
    """data.image_size=null, for a model trained from scratch: the images' own size. Their shorter side (images are
    centre-cropped square), the median over up to SIZE_SAMPLES training images drawn by seed, so a few odd ones do
    not decide it; logged with the range found."""
    indices = torch.as_tensor(indices, dtype=torch.long)
    picked = indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:SIZE_SAMPLES]]
    size_of = getattr(base, "size_of", lambda i: base[i][0].size)  # header reads for files; torchvision's in memory
    sizes = [size_of(int(i)) for i in picked]
    sides = sorted(min(size) for size in sizes)
    side = statistics.median_low(sides)
    found = (f"all {sizes[0][0]}x{sizes[0][1]}" if len(set(sizes)) == 1
             else f"shorter sides from {sides[0]} to {sides[-1]} px, this is their median")
    log.info(f"data.image_size=null: {side} px, the images' own size ({len(sizes)} sampled, {found}); set "
             "data.image_size to resize them")
    return side


def make_splits(parts, *, classes, channels, image_size, augment, seed):
    """Splits from (base dataset, indices) per split, decoded on access, with the train split's augmentation."""
    check_image_settings(channels, image_size)
    size = image_size or own_size(*parts["train"], seed)
    decode = decoder(channels, size)
    splits = {name: Transformed(base, indices, decode) for name, (base, indices) in parts.items()}
    return Splits(**splits, classes=list(classes), image_size=size, augment=augmenter(size) if augment else None)


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


def torchvision_dataset(*, dataset, root, download, channels, image_size, augment, val_fraction, seed):
    """A torchvision dataset with a train/test split (`dataset(root, train, download)`: CIFAR10, MNIST, ...).
    Val is carved from the train split by `seed`; test is the dataset's own test split."""
    if not root:
        raise UserError("data.root is not set: point it at a folder for the dataset, e.g. data.root=data")
    train_all = open_torchvision(dataset, root, download, train=True)
    test = open_torchvision(dataset, root, download, train=False)
    train_idx, val_idx, _ = split_indices(len(train_all), val_fraction, None, seed)
    parts = {"train": (train_all, train_idx), "val": (train_all, val_idx), "test": (test, range(len(test)))}
    return make_splits(parts, classes=train_all.classes, channels=channels, image_size=image_size, augment=augment,
                       seed=seed)


def folder_classes(folder, root):
    """The sorted class subfolders of `folder`; at least two, or one sentence saying what data.root should be."""
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
    if counts.sum() == 0:
        raise UserError(f"data.root={root} has class subfolders but no images ({', '.join(IMG_EXTENSIONS)}) in them")
    empty = [name for name, count in zip(classes, counts) if count == 0]
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


def image_folder(*, root, channels, image_size, augment, val_fraction, test_fraction, seed):
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
    base = class_files(top, classes, root)
    # val/ and test/ next to train/ are used as they are; a missing one is carved from train/
    own = {name: own_split(root, name, classes)
           for name in ("val", "test") if top is train_dir and (root / name).is_dir()}
    train_idx, val_idx, test_idx = split_indices(
        len(base), None if "val" in own else val_fraction, None if "test" in own else test_fraction, seed)
    parts = {"train": (base, train_idx)}
    for name, carved in (("val", val_idx), ("test", test_idx)):
        parts[name] = (own[name], range(len(own[name]))) if name in own else (base, carved)
    return make_splits(parts, classes=classes, channels=channels, image_size=image_size, augment=augment, seed=seed)

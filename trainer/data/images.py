"""Decoding images from disk, for every image source (torchvision's sets, image folders): each image becomes a float
tensor in [0, 1] of `data.shape` = [channels, image_size, image_size], at data.image_size or, with null, the images'
own size; a file that cannot be decoded is one sentence naming it. The random train-time augmentation is built here
too; normalisation, caching and label noise are the data stage's (trainer/data/stage.py), the same for every source.
"""
import statistics

import torch
from PIL import UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from trainer.data.splits import Splits, labels_of
from trainer.errors import UserError, first_line
from trainer.logs import log

PIL_MODES = {1: "L", 3: "RGB"}  # the channels an image is converted to
SIZE_SAMPLES = 100  # training images whose size data.image_size=null reads


class UnreadableImage(UserError):
    """A file PIL cannot decode (truncated, or not an image at all), named with the fix. A DataLoader worker hands it
    to the main process rebuilt from one string: "Caught UnreadableImage in DataLoader worker process 0.", the
    worker's traceback, and last "trainer.data.images.UnreadableImage: <the sentence>"; that keeps only the sentence."""

    def __init__(self, message):
        if message.startswith(f"Caught {type(self).__name__} "):
            message = message.rstrip().splitlines()[-1].removeprefix(f"{__name__}.{type(self).__name__}: ")
        super().__init__(message)


def unreadable(path, error):
    if isinstance(error, PermissionError):  # the file is fine; the user may not open it
        return UnreadableImage(f"{path} cannot be opened (no read permission): make it readable (chmod u+r) or "
                               "delete it")
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

"""Decoding images, for every image source (torchvision's sets, image folders): each image becomes a float tensor in
[0, 1] of `data.shape` = [channels, image_size, image_size], at data.image_size or, with null, the images' own size.
A file becomes a sample through one function, `FileDecoder` (training, caching, evaluation and prediction all call
it): upright as its EXIF orientation says, decoded no larger than the run needs, within the pixel limit; a file that
cannot be decoded, or is over the limit, is one sentence naming it. The random train-time augmentation is built here
too; normalisation, caching and label noise are the data stage's (trainer/data/stage.py), the same for every source.
"""
from __future__ import annotations

import statistics
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from trainer.data.splits import Splits, labels_of
from trainer.errors import UserError, first_line
from trainer.logs import log

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

PIL_MODES = {1: "L", 3: "RGB"}  # the channels an image is converted to
SIZE_SAMPLES = 100  # training images whose size data.image_size=null reads
# Where Pillow refuses an image as a possible decompression bomb (twice Image.MAX_IMAGE_PIXELS, where it warns):
# 178,956,970 pixels, about 13,377 px square. data.max_image_pixels raises it for a folder the user trusts.
PILLOW_LIMIT = 2 * Image.MAX_IMAGE_PIXELS
EXIF_ORIENTATION = 0x0112
TURNED = (5, 6, 7, 8)  # EXIF orientations that turn an image by 90 degrees: its width and height swap
REDUCING_GAP = 2  # decode or box-reduce to at least twice the size the run needs, then resample (Pillow's thumbnail)
UNREDUCIBLE = ("1", "P", "I;16")  # modes Image.reduce refuses; converting them first could change their values


class UnreadableImage(UserError):
    """A file PIL cannot decode (truncated, or not an image at all) or one over the pixel limit, named with the fix.
    A DataLoader worker hands it to the main process rebuilt from one string: "Caught UnreadableImage in DataLoader
    worker process 0.", the worker's traceback, and last "trainer.data.images.UnreadableImage: <the sentence>"; that
    keeps only the sentence."""

    def __init__(self, message: str):
        if message.startswith(f"Caught {type(self).__name__} "):
            message = message.rstrip().splitlines()[-1].removeprefix(f"{__name__}.{type(self).__name__}: ")
        super().__init__(message)


def unreadable(path: str | Path, error: Exception) -> UnreadableImage:
    if isinstance(error, PermissionError):  # the file is fine; the user may not open it
        return UnreadableImage(f"{path} cannot be opened (no read permission): make it readable (chmod u+r) or "
                               "delete it")
    reason = "no image format PIL knows" if isinstance(error, UnidentifiedImageError) else first_line(error)
    return UnreadableImage(f"{path} cannot be read as an image ({reason}): delete it or replace it with a readable "
                           "copy")


@contextmanager
def opened(path: str | Path, max_pixels: int) -> Iterator[Image.Image]:
    """The image file at `path` opened (its header read, nothing decoded), within `max_pixels`. Pillow's own
    decompression-bomb check is off meanwhile, replaced by this one, whose limit the user can raise and whose refusal
    names the file and the key; errors while decoding in the `with` block name the file too.

    Raises:
        UnreadableImage: not an image, truncated, unreadable, or over `max_pixels`.
    """
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UnreadableImage(
                    f"{path} is {width}x{height} px ({width * height:,} pixels), over data.max_image_pixels="
                    f"{max_pixels}, the limit that keeps a decompression bomb out: if you trust this folder, raise "
                    f"it (data.max_image_pixels={width * height}), else shrink or remove the file")
            yield image
    except (OSError, SyntaxError, ValueError) as error:  # PIL: truncated data, not an image, a broken header
        raise unreadable(path, error) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def upright_size(path: str | Path, max_pixels: int = PILLOW_LIMIT) -> tuple[int, int]:
    """(width, height) of the image file as it is shown (its EXIF orientation applied), read from its header."""
    with opened(path, max_pixels) as image:
        width, height = image.size
        return (height, width) if image.getexif().get(EXIF_ORIENTATION) in TURNED else (width, height)


def read_image(path: str | Path, *, side: int | None, max_pixels: int = PILLOW_LIMIT) -> Image.Image:
    """The image file at `path` decoded, upright and no larger than needed: a JPEG decoded at 1/2, 1/4 or 1/8 scale
    (Pillow's draft mode, in the DCT) and any image box-reduced by a whole factor (Image.reduce) while its shorter
    side stays at least REDUCING_GAP times `side` (the antialiased resize after it does the rest, as Pillow's own
    thumbnail does); `side` None keeps every pixel. Turned as its EXIF orientation says (ImageOps.exif_transpose) before
    any resize or crop, so a phone photo is trained on the way it is shown.

    Raises:
        UnreadableImage: the file cannot be decoded, or is over `max_pixels`.
    """
    with opened(path, max_pixels) as image:
        if side is not None:
            image.draft(None, (REDUCING_GAP * side, REDUCING_GAP * side))  # JPEG only; a no-op otherwise
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # before reduce(), whose new image has no EXIF left to read
        reducible = side is not None and image.mode not in UNREDUCIBLE
        factor = min(image.size) // (REDUCING_GAP * side) if reducible else 1
        return image.reduce(factor, box=whole_blocks(image.size, factor)) if factor > 1 else image


def whole_blocks(size: tuple[int, int], factor: int) -> tuple[int, int, int, int]:
    """The centred box of `size` (width, height) whose sides are whole multiples of `factor`: reducing only whole
    blocks keeps the image's centre where it was (the centre crop that follows sees what a full decode would)."""
    (width, height), (left, top) = size, (size[0] % factor // 2, size[1] % factor // 2)
    return left, top, left + width - width % factor, top + height - height % factor


class FileDecoder:
    """An image file -> float tensor [channels, image_size, image_size] in [0, 1]: read_image, then `decoder`. The one
    way a file becomes a sample, for every mode (pickled into DataLoader workers as it is)."""

    def __init__(self, *, channels: int, image_size: int, max_pixels: int = PILLOW_LIMIT):
        self.side, self.max_pixels = image_size, max_pixels
        self.decode = decoder(channels, image_size)

    def __call__(self, path) -> torch.Tensor:
        return self.decode(read_image(path, side=self.side, max_pixels=self.max_pixels))


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grey PNGs and TIFFs ("I": how older Pillow opens them)


class ToMode:
    """Convert a PIL image to grayscale ("L") or RGB, so every sample has data.channels channels. A 16-bit image is
    scaled to 8 bits first (value / 257, so 65535 is 255): Pillow's own convert clips it at 255, which would make
    almost every 16-bit picture pure white."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, image: Image.Image) -> Image.Image:
        if image.mode in SIXTEEN_BIT:
            values = np.asarray(image, dtype=np.float32) / 257
            image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
        return image.convert(self.mode)


def check_image_settings(channels: int, image_size: int | None) -> None:
    if channels not in PIL_MODES:
        raise UserError(f"data.channels={channels} is not supported for images: use 1 (grayscale) or 3 (RGB)")
    if image_size is not None and (not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1):
        raise UserError(f"data.image_size={image_size} is invalid: use a whole number of pixels, e.g. 32 or 224, or "
                        "null for the images' own size")


def decoder(channels: int, image_size: int) -> v2.Compose:
    """PIL image -> float tensor [channels, image_size, image_size] in [0, 1]: shorter side resized (not at all
    when it is image_size already), centre cropped."""
    return v2.Compose([
        ToMode(PIL_MODES[channels]), v2.ToImage(), v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size),
        v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor(),
    ])


def augmenter(image_size: int) -> v2.Compose:
    """Random crop (after padding by an eighth, reflected) and horizontal flip of a decoded image tensor."""
    return v2.Compose([
        v2.RandomCrop(image_size, padding=max(image_size // 8, 1), padding_mode="reflect"),
        v2.RandomHorizontalFlip(),
    ])


class Transformed(Dataset):
    """The samples `indices` of `base`, each image passed through `transform`. Train and val can share a base (val
    carved from torchvision's train set) and still differ in their transform (augmentation for train only)."""

    def __init__(self, base: Dataset, indices: Sequence[int] | torch.Tensor,
                 transform: Callable[[object], torch.Tensor]):
        self.base, self.indices, self.transform = base, torch.as_tensor(indices, dtype=torch.long), transform

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        image, label = self.base[int(self.indices[i])]
        return self.transform(image), label

    @property
    def targets(self) -> torch.Tensor:
        return labels_of(self.base)[self.indices]


def own_size(base: Dataset, indices: Sequence[int] | torch.Tensor, seed: int) -> int:
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


def sample_decoder(base: Dataset, decode: v2.Compose, *, channels: int, size: int) -> v2.Compose | FileDecoder:
    """How a sample of `base` becomes a tensor: a base that lists files (an image folder, with the pixel limit its
    files are read within) through FileDecoder; decoded images (torchvision's sets) through `decode`."""
    max_pixels = getattr(base, "max_pixels", None)
    return decode if max_pixels is None else FileDecoder(channels=channels, image_size=size, max_pixels=max_pixels)


def make_splits(parts: Mapping[str, tuple[Dataset, Sequence[int] | torch.Tensor]], *, classes: Sequence[str],
                channels: int, image_size: int | None, augment: bool, seed: int) -> Splits:
    """Splits from (base dataset, indices) per split, decoded on access, with the train split's augmentation."""
    check_image_settings(channels, image_size)
    size = image_size or own_size(*parts["train"], seed)
    decode = decoder(channels, size)
    splits = {name: Transformed(base, indices, sample_decoder(base, decode, channels=channels, size=size))
              for name, (base, indices) in parts.items()}
    return Splits(**splits, classes=list(classes), image_size=size, augment=augmenter(size) if augment else None)

"""Tiny dataset files written by the tests, in the formats the real datasets use (no download here), each
learnable: a sample's pixels say its class."""
import pickle
import struct
import zlib

import numpy as np
from PIL import Image

COLOURS = {"cat": (250, 10, 10), "dog": (10, 250, 10), "owl": (10, 10, 250)}  # each class has its own colour


def write_idx(path, values, dims):
    """An MNIST idx file: magic (0, 0, uint8 type 8, number of dims), big-endian sizes, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    path.write_bytes(header + bytes(values))


def write_mnist(folder, n_train=20, n_test=10):
    """Tiny MNIST-format files where torchvision looks for them; image i is filled with the value 10 * label."""
    raw = folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = [i % 10 for i in range(n)]
        write_idx(raw / f"{prefix}-images-idx3-ubyte", [10 * label for label in labels for _ in range(28 * 28)],
                  (n, 28, 28))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, (n,))


def write_cifar10(root, per_batch=20):
    """Tiny CIFAR-10 pickles in torchvision's layout (the caller patches out the real files' checksums); the image of
    class k is filled with 25 * k plus a little noise."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [i % 10 for i in range(per_batch)]
        pixels = np.repeat(np.array(labels, dtype=np.int64)[:, None] * 25, 3 * 32 * 32, axis=1)
        data = np.clip(pixels + rng.integers(0, 5, pixels.shape), 0, 255).astype(np.uint8)
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))


def write_pngs(folder, classes, per_class, size=20):
    """One folder per class of solid-colour PNGs (COLOURS), of slightly different sizes from `size` px up."""
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (size + i, size + 4), COLOURS[name]).save(folder / name / f"{i}.png")


def write_blank_png(path, width, height):
    """A valid 1-bit PNG of `width` x `height` blank pixels, written without holding them: at 13,500 px square it is
    a decompression bomb, 182 M pixels from about 20 kB."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress((b"\0" * (1 + (width + 7) // 8)) * height)  # each row: filter byte 0, then the bits
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def arrow(direction, size=24, shift=(0, 0), noise=None):
    """A white arrow pointing "up" or "right" (a shaft and a head), moved by `shift` (x, y) pixels, on black or on
    `noise` (a [size, size] uint8 array)."""
    image = Image.fromarray(noise).copy() if noise is not None else Image.new("L", (size, size))
    pixels = image.load()
    middle = size // 2
    for t in range(3, size - 3):  # the shaft, then the head: a triangle at the tip
        pixels[middle + shift[0], t + shift[1]] = 255
    for depth in range(size // 3):
        for w in range(-depth, depth + 1):
            pixels[middle + w + shift[0], 3 + depth + shift[1]] = 255
    return image if direction == "up" else image.rotate(-90)


def write_phone_photos(folder, per_class, turned_every=2):
    """Arrows pointing up and right as JPEGs, each shifted a little; every `turned_every`-th "up" arrow stored as a
    phone stores a photo taken sideways: the pixels turned a quarter clockwise (they point right) and the EXIF
    Orientation tag 8, which tells a viewer to turn them back a quarter counter-clockwise (so it is seen upright)."""
    rng = np.random.default_rng(0)
    for name in ("up", "right"):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            image = arrow(name, shift=tuple(int(v) for v in rng.integers(-2, 3, 2)),
                          noise=rng.integers(0, 40, (24, 24), dtype=np.uint8))  # each file its own
            exif = Image.Exif()
            if name == "up" and i % turned_every == 0:
                image, exif[0x0112] = image.rotate(-90), 8
            image.convert("RGB").save(folder / name / f"{i}.jpg", quality=95, exif=exif)


CITIES = ["서울", "부산", "대구", "Incheon"]  # text categories, Korean among them (cp949 files must keep them)


def mixed_table(n=600, seed=0):
    """A table as people have one: numbers and text, both with empty cells; a 3-class target `label` and a numeric
    target `price`, each a linear function of the inputs plus noise (so logistic and linear regression are the right
    baselines); an `id` and a `split` column (train 60%, val 20%, test 20%)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n).round(1)
    income = rng.normal(50, 15, n).round(2)
    city = rng.choice(CITIES, n)
    member = rng.choice(["yes", "no"], n)
    effect = {"서울": 1.0, "부산": -0.5, "대구": 0.0, "Incheon": 0.6}
    score = 0.08 * (age - 40) - 0.05 * (income - 50) + np.vectorize(effect.get)(city) + 0.8 * (member == "yes")
    noisy = score + rng.logistic(0, 0.2, n)
    label = np.select([noisy < -0.3, noisy < 0.7], ["low", "mid"], "high")
    price = 3 * age + 1.5 * income + 40 * np.vectorize(effect.get)(city) + 25 * (member == "yes") + rng.normal(0, 8, n)
    frame = pd.DataFrame({"id": [f"r{k:04d}" for k in range(n)], "age": age, "income": income, "city": city,
                          "member": member, "label": label, "price": price.round(3),
                          "split": rng.choice(["train", "val", "test"], n, p=[0.6, 0.2, 0.2])})
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame.loc[rng.random(n) < 0.08, "city"] = np.nan
    return frame

"""Tiny dataset files written by the tests, in the formats the real datasets use (no download here), each
learnable: a sample's pixels say its class."""
import pickle
import struct

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

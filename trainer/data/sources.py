"""Datasets held in memory as tensors: the tables and images scikit-learn ships (digits, iris, diabetes), and
generated data for smoke tests, benchmarks and the loss experiments (synthetic, synthetic_regression). Each is a
data config's `source` and returns `Splits`."""
import importlib
import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from trainer.data.splits import Splits, split_tensors
from trainer.errors import UserError


def digits(*, val_fraction: float, test_fraction: float, seed: int, split: str = "random") -> Splits:
    """scikit-learn's 8x8 handwritten digits: 1797 images [1, 8, 8] in [0, 1], 10 classes."""
    table = features_and_label("digits.csv.gz", "load_digits", delimiter=",")  # 64 pixel values (0..16), the label
    x = torch.tensor(table[:, :-1], dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0  # pixel values are 0..16
    y = torch.tensor(table[:, -1], dtype=torch.long)
    return split_tensors(x, y, val_fraction, test_fraction, seed, method=split)


def iris(*, val_fraction: float, test_fraction: float, seed: int, split: str = "random") -> Splits:
    """Fisher's iris: 150 rows of 4 measurements (cm), 3 classes."""
    table = features_and_label("iris.csv", "load_iris", delimiter=",", skip_rows=1)  # header; 4 values, the label
    x = torch.tensor(table[:, :-1], dtype=torch.float32)
    y = torch.tensor(table[:, -1], dtype=torch.long)
    # measurements in cm on different scales: data.normalize standardises them with the training split's statistics
    return split_tensors(x, y, val_fraction, test_fraction, seed, method=split)


def features_and_label(file_name: str, loader: str, *, delimiter: str, skip_rows: int = 0) -> np.ndarray:
    """A classification set scikit-learn ships, as rows [features..., label] (float64): its file read directly
    (shipped_table), or, where this version keeps it elsewhere, `sklearn.datasets.<loader>()`'s data and target."""
    table = shipped_table(file_name, delimiter=delimiter, skip_rows=skip_rows)
    if table is None:
        bunch = getattr(importlib.import_module("sklearn.datasets"), loader)()
        table = np.column_stack([bunch.data, bunch.target])
    return table


def shipped_table(file_name: str, *, delimiter: str | None, skip_rows: int = 0) -> np.ndarray | None:
    """One of the data files scikit-learn ships (`sklearn/datasets/data/<file_name>`), read as its loaders read it
    (`numpy.loadtxt`, gzip by the name), as float64 rows: without importing scikit-learn, whose import (about a
    second, with SciPy and pandas) takes longer than the default run's data. None when this version of
    scikit-learn keeps the file elsewhere (or it is not installed): the caller then uses scikit-learn's loader, so
    a new layout costs the second again, never the data. `delimiter` None: runs of whitespace."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "datasets" / "data" / file_name
        if path.is_file():
            return np.loadtxt(path, delimiter=delimiter, skiprows=skip_rows, ndmin=2)
    return None


def synthetic(*, shape: list[int], num_classes: int, num_samples: int, noise: float, val_fraction: float,
              test_fraction: float, seed: int, split: str = "random") -> Splits:
    """Each class is a fixed random pattern; a sample is its class pattern plus Gaussian noise of std `noise`."""
    if num_classes < 2 or num_samples < num_classes:
        raise UserError("data=synthetic needs data.num_classes >= 2 and data.source.num_samples >= data.num_classes")
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randn(num_classes, *shape, generator=generator)
    y = torch.arange(num_samples) % num_classes
    x = patterns[y] + noise * torch.randn(num_samples, *shape, generator=generator)
    return split_tensors(x, y, val_fraction, test_fraction, seed, method=split)


def diabetes(*, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """scikit-learn's diabetes set: 442 rows of 10 features, one target (a disease-progression score, 25 to 346)."""
    # unscaled, as scikit-learn ships them: data.normalize standardises with the training split's statistics
    x, y = shipped_table("diabetes_data_raw.csv.gz", delimiter=None), shipped_table("diabetes_target.csv.gz",
                                                                                    delimiter=None)
    if x is None or y is None:
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True, scaled=False)
    y = y.reshape(-1)
    return split_tensors(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).unsqueeze(1),
                         val_fraction, test_fraction, seed)


def synthetic_regression(*, num_features: int, num_samples: int, noise: float, outlier_fraction: float,
                         heavy_tail: bool, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """y = w.x + noise (or exp of it with `heavy_tail`), x standard normal; a fraction of the training targets is
    replaced by gross errors, the validation and test targets stay clean."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(num_samples, num_features, generator=generator)
    w = torch.randn(num_features, generator=generator) / num_features ** 0.5
    y = x @ w + noise * torch.randn(num_samples, generator=generator)
    y = (y.exp() if heavy_tail else y).unsqueeze(1)
    splits = split_tensors(x, y, val_fraction, test_fraction, seed)
    x_train, y_train = splits.train.tensors
    bad = torch.rand(len(y_train), generator=generator) < outlier_fraction
    signs = torch.randint(0, 2, (len(y_train), 1), generator=generator) * 2 - 1
    y_train = torch.where(bad.unsqueeze(1), y_train + signs * 10 * y.std(), y_train)
    return replace(splits, train=TensorDataset(x_train, y_train))

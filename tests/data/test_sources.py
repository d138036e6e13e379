"""The datasets scikit-learn ships, read from its files without importing it, are exactly what its loaders give."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits, load_iris

from trainer.data import sources

SPLIT = {"val_fraction": 0.15, "test_fraction": 0.15, "seed": 0}


def all_rows(splits):
    """Every (x, y) of the three splits, in the order the split put them, as float64 numpy arrays."""
    parts = [split.tensors for split in (splits.train, splits.val, splits.test)]
    return (np.concatenate([x.double().numpy() for x, _ in parts]), np.concatenate([y.double().numpy()
                                                                                     for _, y in parts]))


def sorted_rows(x, y):
    rows = np.column_stack([x.reshape(len(x), -1), y.reshape(len(y), -1)])
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize(("source", "loader", "scale"), [
    (sources.digits, lambda: load_digits(return_X_y=True), 16.0),
    (sources.iris, lambda: load_iris(return_X_y=True), 1.0),
    (sources.diabetes, lambda: load_diabetes(return_X_y=True, scaled=False), 1.0),
])
def test_shipped_data_is_what_scikit_learn_loads(source, loader, scale):
    x, y = all_rows(source(**SPLIT))
    expected_x, expected_y = loader()
    assert x.shape[0] == len(expected_y) and x[0].size == expected_x.shape[1]
    # the same rows (float32, as the run holds them), whatever the split's order
    expected = sorted_rows(torch.tensor(expected_x / scale, dtype=torch.float32).double().numpy(), expected_y)
    np.testing.assert_array_equal(sorted_rows(x, y), expected)


def test_without_the_files_scikit_learn_loads_them(monkeypatch):
    """A scikit-learn that keeps its data elsewhere: the loader is asked, and the data are the same."""
    straight = all_rows(sources.digits(**SPLIT))
    monkeypatch.setattr(sources, "shipped_table", lambda *args, **kwargs: None)
    for got, expected in zip(all_rows(sources.digits(**SPLIT)), straight):
        np.testing.assert_array_equal(got, expected)


def test_reading_digits_does_not_import_scikit_learn():
    code = ("import sys; from trainer.data import sources; "
            "sources.digits(val_fraction=0.15, test_fraction=0.15, seed=0); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

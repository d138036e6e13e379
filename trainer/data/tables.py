"""Your own table (data=csv): a CSV, TSV or Parquet file, one row per sample, one column the target. The source reads
it (trainer/data/table_files.py), leaves out the rows with no target, cuts the splits (stratified for
classification, or by the file's own split column), fits the preprocessing on the training rows and encodes every
split with it (trainer/data/preprocessing.py). What it decided (the task, the split method, the input shape, the
fitted preprocessing) goes back to the data stage as `Splits.facts`, which fills them into the run's config.

Given a fitted `preprocessing` (a checkpoint's: mode=eval), the source applies it instead of fitting anew, so new
data is encoded exactly as the model's training data was.
"""
from collections.abc import Sequence

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.data import TensorDataset

from trainer.data.preprocessing import (check_fitted, described, encoded, encoding_notes, fit_features, fit_target,
                                         target_tensor)
from trainer.data.splits import Splits, check_split_fits_task, split_indices
from trainer.data.table_files import Table, column_named, read_table
from trainer.errors import UserError
from trainer.logs import log
from trainer.metrics import CLASSIFICATION, REGRESSION

MISSING = ("fill", "error")  # data.missing
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}  # split column


def plain(value: object) -> object:
    """A config node handed to the source (a list, the stored preprocessing) as plain Python containers."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def table(*, path: str | None, target: str | None, val_fraction: float, test_fraction: float, seed: int,
          features: Sequence[str] | None = None, drop: Sequence[str] | None = None, task: str | None = None,
          split: str | None = None, split_column: str | None = None, id_column: str | None = None,
          missing: str = "fill", encoding: str | None = None, delimiter: str | None = None,
          preprocessing: dict | None = None) -> Splits:
    """The table in `path` (data.path) with the column `target` (data.target) as labels or targets and every other
    column (or `features`), less `drop`, `id_column` and `split_column`, as inputs; split by `seed` in
    (1 - val - test, val, test) fractions, or by `split_column`'s train/val/test values.

    Raises:
        UserError: a missing key or column (with the closest name), a file that cannot be read, a split that
            cannot be cut, empty cells with data.missing=error; each in one sentence, before any training.
    """
    preprocessing = plain(preprocessing)
    check_fitted(preprocessing)  # a stored one (eval of a new table): data, checked first
    data = read_checked(path, missing, encoding=encoding, delimiter=delimiter)
    target = column_named(data, preprocessing["target"]["name"] if preprocessing else required_target(target, data),
                          "data.target")
    labelled = labelled_rows(data, target)
    fitted_target = preprocessing["target"] if preprocessing else fit_target(data, target, labelled, task)
    task = fitted_target["task"]
    y = target_tensor(data, fitted_target, labelled)
    method = split or ("stratified" if task == CLASSIFICATION else "random")
    check_split_fits_task(method, task)
    parts = cut(data, labelled, y if task == CLASSIFICATION else None, method=method, split_column=split_column,
                fractions=(val_fraction, test_fraction), seed=seed, fitting=not preprocessing)
    if preprocessing:
        fitted = preprocessing["features"]
        _ = [column_named(data, feature["name"]) for feature in fitted]  # every column the model takes is there
    else:
        names = feature_names(data, target, features=plain(features), drop=plain(drop) or [],
                              exclude={"data.id_column": id_column, "data.split_column": split_column})
        fitted = fit_features(data, names, labelled[parts[0]])
    check_complete(data, [feature["name"] for feature in fitted], labelled, missing)
    log.info(f"data.path={path}: {len(labelled)} rows, target {target} ({task}"
             + (f", {len(fitted_target['classes'])} classes" if fitted_target["classes"] else "") + "); "
             + described(fitted))
    splits = encoded_splits(data, fitted, labelled, parts, y)
    facts = {"task": task, "split": method, "shape": [splits["train"].tensors[0].shape[1]],
             "num_classes": 1 if task == REGRESSION else None,
             "preprocessing": {"target": fitted_target, "features": fitted}}
    return Splits(**splits, classes=fitted_target["classes"], facts=facts)


def encoded_splits(data: Table, fitted: list[dict], labelled: np.ndarray, parts: tuple, y: torch.Tensor
                   ) -> dict[str, TensorDataset]:
    """{"train", "val", "test"}: each split's rows encoded with the fitted features, with their targets; what the
    encoding met that the training rows did not have (unseen categories) is logged per split."""
    splits = {}
    for name, idx in zip(("train", "val", "test"), parts):
        result = encoded(data, fitted, labelled[idx])
        for note in encoding_notes(result, f"the {name} split"):
            log.info(note)
        splits[name] = TensorDataset(result.x, y[torch.as_tensor(idx, dtype=torch.long)])
    return splits


def read_checked(path: str | None, missing: str, *, encoding: str | None, delimiter: str | None) -> Table:
    if not path:
        raise UserError("data=csv needs data.path: point it at your CSV, TSV or Parquet file")
    if missing not in MISSING:
        raise UserError(f"data.missing={missing} is not known: use data.missing=fill (empty cells filled from the "
                        "training rows) or data.missing=error")
    return read_table(path, encoding=encoding, delimiter=delimiter)


def required_target(target: str | None, data: Table) -> str:
    if not target:
        shown = ", ".join(data.columns[:30])
        raise UserError(f"data=csv needs data.target, the column to predict: one of {shown}")
    return target


def labelled_rows(data: Table, target: str) -> np.ndarray:
    """Positions of the rows that have a target; the others are left out, with a log line."""
    present = data.frame[target].notna().to_numpy()
    if not present.any():
        raise UserError(f"data.target={target} is empty in every row of data.path={data.path}: choose the column "
                        "to predict")
    if not present.all():
        log.info(f"data.target={target}: {int((~present).sum())} of {len(present)} rows have no value and are left "
                 "out")
    return np.flatnonzero(present)


def feature_names(data: Table, target: str, *, features: list | None, drop: list, exclude: dict) -> list[str]:
    """data.features (or every column), less data.drop, the target and the columns `exclude` names by key; every
    name must be a column of the file."""
    features, drop = ([names] if isinstance(names, str) else names for names in (features, drop))  # data.drop=id
    for key, names in (("data.features", features or []), ("data.drop", drop)):
        for name in names:
            column_named(data, name, key)
    left_out = {target, *drop, *(column_named(data, name, key) for key, name in exclude.items() if name)}
    if features and target in features:
        raise UserError(f"data.features lists {target}, the target: a model cannot take what it predicts as input; "
                        "remove it from data.features")
    names = [name for name in (features or data.columns) if name not in left_out]
    if not names:
        raise UserError(f"data.path={data.path} has no column left to learn from besides data.target={target}: "
                        "check data.features and data.drop")
    return names


def check_complete(data: Table, names: list[str], rows: np.ndarray, missing: str) -> None:
    """data.missing=error: an empty cell in a feature column is one sentence naming the column and the row."""
    if missing != "error":
        return
    for name in names:
        empty = np.flatnonzero(data.frame[name].iloc[rows].isna().to_numpy())
        if len(empty):
            raise UserError(f"column {name} of data.path={data.path} has {len(empty)} empty cells (the first in data "
                            f"row {rows[empty[0]] + 1}) and data.missing=error: fill them in the file, or set "
                            "data.missing=fill")


def cut(data: Table, labelled: np.ndarray, labels: torch.Tensor | None, *, method: str, split_column: str | None,
        fractions: tuple[float, float], seed: int, fitting: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) positions into the labelled rows: by split_indices (stratified by `labels` for
    classification), or by the split column's values, a split it does not name carved from its train rows (with
    none, and a stored preprocessing to apply rather than fit, the splits are the rows it names)."""
    if split_column is None:
        return tuple(part.numpy() for part in split_indices(len(labelled), *fractions, seed, labels=labels,
                                                            method=method))
    named = named_splits(data, column_named(data, split_column, "data.split_column"), labelled)
    own = {name: np.flatnonzero(named == name) for name in ("train", "val", "test")}
    if not len(own["train"]) and not fitting:  # evaluating a trained model on new rows: test (and val) are enough
        return own["train"], own["val"], own["test"]
    if not len(own["train"]):
        raise UserError(f"data.split_column={split_column} names no row train: mark the training rows train")
    carve = [None if len(own[name]) else fraction for name, fraction in zip(("val", "test"), fractions)]
    train = own["train"]
    idx = split_indices(len(train), *carve, seed, labels=None if labels is None else labels[train], method=method)
    carved = [name for name, fraction in zip(("val", "test"), carve) if fraction is not None]
    if carved:
        log.info(f"data.split_column={split_column} names no {' or '.join(carved)} row: carved from its train rows "
                 "(data.source.val_fraction, data.source.test_fraction)")
    return (train[idx[0].numpy()], own["val"] if carve[0] is None else train[idx[1].numpy()],
            own["test"] if carve[1] is None else train[idx[2].numpy()])


def named_splits(data: Table, column: str, rows: np.ndarray) -> np.ndarray:
    """The split each labelled row's cell names (train, val or test; case and spaces aside)."""
    cells = data.texts(column, rows)
    named = cells.str.lower().map(SPLIT_NAMES)
    if named.isna().any():
        odd = sorted(set(cells[named.isna()].fillna("(empty)").tolist()))
        raise UserError(f"data.split_column={column} holds {', '.join(map(repr, odd[:5]))}: every row needs train, "
                        "val or test there")
    return named.to_numpy()

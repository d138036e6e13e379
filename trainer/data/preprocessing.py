"""A table's columns as a model's inputs and targets. What is fitted on the training rows (each feature column's kind,
the number that fills its empty cells, a text column's categories; the target's task and classes) is plain data
(lists, numbers, strings): it is filled into the run's config as data.preprocessing, so every checkpoint stores it and
mode=eval and mode=predict apply exactly it, and nothing from a file is ever unpickled or called.

- a column whose every cell in the training rows is a number (or empty) is a number: an empty cell is filled with the
  training rows' median, and a missing-indicator input (1 where it was empty) is added when the training rows have
  an empty one;
- any other column is text: one-hot encoded with the categories seen in the training rows (sorted), and an input for
  "missing" when the training rows have an empty cell; a category first seen later is all zeros (counted);
- the target: text, or integers of at most MAX_INTEGER_CLASSES values, is classification (the classes are its values,
  sorted); other numbers are regression. data.task overrides it.
Standardising the inputs is the data stage's (data.normalize), the same for every source.
"""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from trainer.data.table_files import Table
from trainer.errors import UserError
from trainer.logs import log
from trainer.metrics import CLASSIFICATION, REGRESSION

MAX_CATEGORIES = 100  # a text column with more distinct values is an id or free text, not categories
MAX_INTEGER_CLASSES = 20  # a target of whole numbers with at most this many values is classes
MIN_ROWS_FOR_AN_ID = 20  # a text column different in every one of at least this many training rows is an id
NUMBER, CATEGORY = "number", "category"  # a feature's kind


def number_text(value: float) -> str:
    """A number as a class name: 3.0 -> "3", 2.5 -> "2.5"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def config_safe(values: list, what: str) -> list:
    """Text read from a file that goes into the run's config: `${` would make the config read it as an
    interpolation (which can call a resolver), so it is refused."""
    for value in values:
        if "${" in str(value):
            raise UserError(f"{what} holds the text {value!r}, which a config would read as an interpolation: change "
                            "that text in the file (e.g. '$ {')")
    return values


def fit_target(table: Table, name: str, rows: np.ndarray, task: str | None) -> dict:
    """The target column at the labelled `rows`: {"name", "task", "numbers" (read as numbers), "classes" (names,
    or None for regression)}. `task` (data.task) or, with None, decided from the values (logged with the override).

    Raises:
        UserError: a regression of a column that holds text; a column of numbers but for a few cells, whose task
            would otherwise be decided by those cells.
    """
    numbers, bad = table.numbers(name, rows)
    texts = table.texts(name, rows)
    if task is None:
        if bad and bad <= 0.1 * len(rows):
            odd = sorted(set(texts[numbers.isna()].tolist()))[:3]
            raise UserError(f"data.target={name} holds numbers but for {bad} cells ({', '.join(map(repr, odd))}): "
                            "empty them for a regression (rows with no target are left out), or set "
                            "data.task=classification")
        integers = not bad and bool((numbers == numbers.round()).all())
        task = CLASSIFICATION if bad or integers and numbers.nunique() <= MAX_INTEGER_CLASSES else REGRESSION
        why = ("text" if bad else f"{numbers.nunique()} whole numbers" if task == CLASSIFICATION
               else f"{numbers.nunique()} distinct numbers")
        other = REGRESSION if task == CLASSIFICATION else CLASSIFICATION
        log.info(f"data.target={name} holds {why}: data.task={task} (set data.task={other} to override)")
    elif task == REGRESSION and bad:
        odd = texts[numbers.isna()].iloc[0]
        raise UserError(f"data.target={name} holds text ({odd!r}) and data.task=regression needs numbers: set "
                        "data.task=classification, or choose another data.target")
    classes = None
    if task == CLASSIFICATION:
        classes = ([number_text(v) for v in sorted(set(numbers.tolist()))] if not bad
                   else sorted(set(texts.tolist())))
        config_safe(classes, f"data.target={name}")
    return {"name": name, "task": task, "numbers": not bad, "classes": classes}


def target_tensor(table: Table, target: dict, rows: np.ndarray) -> torch.Tensor:
    """The target at `rows`: class indices [n] (int64) into target["classes"], or values [n, 1] (float32).

    Raises:
        UserError: a value that is not one of the classes (new data for a trained model), or not a number.
    """
    name = target["name"]
    numbers, bad = table.numbers(name, rows)
    if target["classes"] is None:
        if bad:
            raise UserError(f"data.target={name} holds {bad} cells that are not numbers, and the model predicts "
                            "numbers: empty them (rows with no target are left out)")
        return torch.tensor(numbers.to_numpy(), dtype=torch.float32).unsqueeze(1)
    values = numbers.map(number_text) if target["numbers"] and not bad else table.texts(name, rows)
    index = {label: k for k, label in enumerate(target["classes"])}
    labels = values.map(index)
    if labels.isna().any():
        unknown = sorted(set(values[labels.isna()].tolist()))
        raise UserError(f"data.target={name} holds {', '.join(map(repr, unknown[:5]))} in {int(labels.isna().sum())} "
                        f"rows, not a class the model has ({', '.join(target['classes'])}): leave those rows out")
    return torch.tensor(labels.to_numpy(dtype=np.int64))


def fit_features(table: Table, names: list[str], rows: np.ndarray) -> list[dict]:
    """Each feature column fitted on the training `rows`: {"name", "kind": "number", "fill", "indicator"} or
    {"name", "kind": "category", "categories", "missing"}.

    Raises:
        UserError: a column with no value in the training rows, or text with more than MAX_CATEGORIES values.
    """
    config_safe(names, f"data.path={table.path}: a column name")
    fitted = []
    for name in names:
        numbers, bad = table.numbers(name, rows)
        present = numbers.dropna()
        if not bad and present.empty:
            raise UserError(f"column {name} of data.path={table.path} has no value in the training rows: leave it "
                            f"out with data.drop=[{name}]")
        if not bad:
            fitted.append({"name": name, "kind": NUMBER, "fill": float(present.median()),
                           "indicator": bool(numbers.isna().any())})
            continue
        texts = table.texts(name, rows)
        categories = config_safe(sorted(set(texts.dropna().tolist())), f"column {name} of data.path={table.path}")
        check_categories(table, name, categories, texts, bad)
        fitted.append({"name": name, "kind": CATEGORY, "categories": categories,
                       "missing": bool(texts.isna().any())})
    return fitted


def check_categories(table: Table, name: str, categories: list[str], texts: pd.Series, bad: int) -> None:
    """A text column one-hot encoding can learn from: at most MAX_CATEGORIES categories, and not a different one in
    every training row (an id or free text: every new row would be a category never seen)."""
    present = int(texts.notna().sum())
    unique = len(categories) == present >= MIN_ROWS_FOR_AN_ID
    if len(categories) <= MAX_CATEGORIES and not unique:
        return
    mostly = f" (numbers but for {bad} cells: empty those to read it as numbers)" if bad <= 0.1 * present else ""
    what = (f"a different text in each of its {present} training rows" if unique
            else f"{len(categories)} different texts in the training rows, more than the {MAX_CATEGORIES} categories "
                 "one-hot encoding takes")
    raise UserError(f"column {name} of data.path={table.path} holds {what}{mostly}: leave it out with "
                    f"data.drop=[{name}], or name it data.id_column")


@dataclass
class Encoded:
    """A table's rows as model inputs: `x` [rows, width] float32; `unseen` [rows] bool, rows with a category the
    training rows did not have; the counts per column of those and of cells that are not numbers in a number column
    (both read as missing)."""
    x: torch.Tensor
    unseen: np.ndarray
    unseen_by_column: dict = field(default_factory=dict)
    not_numbers: dict = field(default_factory=dict)


def encoded(table: Table, features: list[dict], rows: np.ndarray | None = None) -> Encoded:
    """The `rows` of the table (all by default) encoded with the fitted `features` (fit_features)."""
    n = len(table) if rows is None else len(rows)
    result = Encoded(x=torch.empty(0), unseen=np.zeros(n, dtype=bool))
    blocks = [ENCODERS[feature["kind"]](table, feature, rows, result) for feature in features]
    result.x = torch.tensor(np.hstack(blocks) if blocks else np.zeros((n, 0)), dtype=torch.float32)
    return result


def encoded_number(table: Table, feature: dict, rows: np.ndarray | None, result: Encoded) -> np.ndarray:
    numbers, bad = table.numbers(feature["name"], rows)
    if bad:
        result.not_numbers[feature["name"]] = bad
    columns = [numbers.fillna(feature["fill"]).to_numpy()]
    if feature["indicator"]:
        columns.append(numbers.isna().to_numpy())
    return np.stack(columns, axis=1).astype(np.float32)


def encoded_category(table: Table, feature: dict, rows: np.ndarray | None, result: Encoded) -> np.ndarray:
    texts = table.texts(feature["name"], rows)
    index = {category: k for k, category in enumerate(feature["categories"])}
    codes = texts.map(index).fillna(-1).to_numpy(dtype=np.int64)  # -1: empty, or a category training did not have
    onehot = np.zeros((len(texts), len(feature["categories"]) + feature["missing"]), dtype=np.float32)
    known = np.flatnonzero(codes >= 0)
    onehot[known, codes[known]] = 1
    if feature["missing"]:
        onehot[:, -1] = texts.isna().to_numpy()
    unseen = texts.notna().to_numpy() & (codes < 0)
    if unseen.any():
        result.unseen |= unseen
        result.unseen_by_column[feature["name"]] = int(unseen.sum())
    return onehot


ENCODERS = {NUMBER: encoded_number, CATEGORY: encoded_category}


def check_fitted(fitted: object, inputs: int | None = None) -> None:
    """A stored data.preprocessing (None: there is none) (read from a checkpoint someone may have handed the user) is what fit_target and
    fit_features make, and makes `inputs` inputs (data.shape[0]) when known: checked before any row is read, so an
    edited one is one sentence instead of a failure deep in pandas or torch minutes later.

    Raises:
        UserError: what is wrong with it, naming data.preprocessing.
    """
    if fitted is None:  # nothing stored: a table fitted now
        return
    fault = fitted_fault(fitted)
    if fault is None and inputs is not None and width(fitted["features"]) != inputs:
        fault = f"its features make {width(fitted['features'])} inputs and the model takes {inputs}"
    if fault is not None:
        raise UserError(f"the stored data.preprocessing is not one losslab writes ({fault}): use the checkpoint "
                        "as its run wrote it, or train again")


def fitted_fault(fitted: object) -> str | None:
    """Why `fitted` is not a preprocessing fit_target and fit_features make; None if it is."""
    if not isinstance(fitted, dict) or not isinstance(fitted.get("features"), list) or not isinstance(
            fitted.get("target"), dict):
        return "it is not {target: ..., features: [...]}"
    for feature in fitted["features"]:
        kind = feature.get("kind") if isinstance(feature, dict) else None
        if kind == NUMBER and is_number(feature.get("fill")) and isinstance(feature.get("indicator"), bool):
            continue
        if kind == CATEGORY and isinstance(feature.get("missing"), bool) and isinstance(feature.get("categories"),
                                                                                       list) and all(
                isinstance(c, str) for c in feature["categories"]):
            continue
        name = feature.get("name") if isinstance(feature, dict) else repr(feature)
        return f"the feature {name} is not a number with a numeric fill or a category with a list of names"
    return None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def width(features: list[dict]) -> int:
    """Inputs the fitted features make: 1 per number (+1 indicator), 1 per category (+1 for missing)."""
    return sum(1 + f["indicator"] if f["kind"] == NUMBER else len(f["categories"]) + f["missing"] for f in features)


def described(features: list[dict]) -> str:
    """One line on the fitted features, for the log."""
    numbers = [f for f in features if f["kind"] == NUMBER]
    texts = [f for f in features if f["kind"] == CATEGORY]
    filled = sum(f["indicator"] for f in numbers)
    return (f"{len(features)} feature columns -> {width(features)} inputs: {len(numbers)} numbers ({filled} with "
            f"empty cells: filled with the training median, plus a missing indicator), {len(texts)} text "
            f"(one-hot, {sum(len(f['categories']) for f in texts)} categories seen in training)")


def encoding_notes(result: Encoded, where: str) -> list[str]:
    """Log lines on what encoding `where` met that training did not: unseen categories, text in number columns."""
    notes = []
    if result.unseen.any():
        columns = ", ".join(f"{name} {count}" for name, count in result.unseen_by_column.items())
        notes.append(f"{where}: {int(result.unseen.sum())} rows have a category the training rows did not have "
                     f"(encoded as all zeros; per column: {columns})")
    for name, count in result.not_numbers.items():
        notes.append(f"{where}: column {name} has {count} cells that are not numbers, filled like empty ones")
    return notes

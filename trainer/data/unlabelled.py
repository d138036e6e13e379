"""New inputs for a trained model (mode=predict), with no labels needed: the rows of a table (a model trained on
data=csv) or the image files in a folder (a model trained on images), each prepared exactly as the model's training
data was, from the run's stored data config: the table's fitted preprocessing, the images' channels and size, and
the training split's mean and std.

A batch holds (inputs, positions, readable): an image file that cannot be decoded comes as zeros with readable
False, so the rest of the batch is predicted and the file is named (`Inputs.why`), also from DataLoader workers.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from trainer.data.normalization import Standardize
from trainer.errors import UserError, first_line
from trainer.logs import log

if TYPE_CHECKING:
    from trainer.data.table_files import Table

# what mode=predict takes from the command line (the rest of the data config is the checkpoint's): where the inputs
# are and how to read them
TABLE_KEYS = ("path", "id_column", "encoding", "delimiter", "missing", "batch_size", "num_workers")
IMAGE_KEYS = ("root", "max_image_pixels", "batch_size", "num_workers")


@dataclass
class Inputs:
    """What a model predicts on: `dataset` gives (x, position, readable) per input; `ids` name each input in
    predictions.csv, under the column `id_name` ("row", the id column's name, or "path"); `truth`: the target's
    values, when a table has the target column; `why(position)`: why an unreadable input could not be read."""
    dataset: Dataset
    ids: list[str]
    id_name: str
    truth: list[str] | None = None
    why: Callable[[int], str] = lambda position: ""


def is_table(data: Mapping) -> bool:
    """Whether a run's data config is a table's (data=csv: its fitted preprocessing is stored)."""
    return data.get("preprocessing") is not None


def input_keys(data: Mapping) -> tuple[str, ...]:
    """The data keys mode=predict takes from the command line for a model trained on `data`.

    Raises:
        UserError: a model trained on data that names no columns and holds no images (iris, diabetes, generated
            tables): nothing says how new inputs would be laid out.
    """
    if is_table(data):
        return TABLE_KEYS
    if len(data["shape"]) == 3:
        return IMAGE_KEYS
    raise UserError("mode=predict takes a model trained on a table (data=csv) or on images, and this checkpoint's "
                    f"data has samples of shape {list(data['shape'])} and no named columns: train it with data=csv")


def new_inputs(data: Mapping, *, typed: Collection[str] = ()) -> Inputs:
    """The inputs a run's data config (the checkpoint's, with this command's input_keys) points at: the rows of
    data.path for a table model, the image files under data.root for an image model. `typed`: the data keys the
    command line set (a data.id_column it names must be in the file; the training run's own is used where it is).

    Raises:
        UserError: a model trained on data that names no columns and holds no images (iris, diabetes), a missing
            file or folder, a table without a column the model takes; in one sentence, before any prediction.
    """
    statistics = None  # data.normalize with the training split's mean and std (a pretrained model has none)
    if data.get("normalize") and data.get("mean") is not None:
        statistics = [float(v) for v in data["mean"]], [float(v) for v in data["std"]]
    input_keys(data)  # data it can predict for
    if is_table(data):
        return table_rows(data, statistics, id_required="data.id_column" in typed)
    return image_files(data, statistics)


def table_rows(data: Mapping, statistics: tuple[list[float], list[float]] | None, *, id_required: bool) -> Inputs:
    """Every row of data.path, encoded with the stored preprocessing; its id is data.id_column's value or its
    row number (from 1, the header not counted)."""
    from trainer.data.preprocessing import check_fitted, encoded, encoding_notes, number_text
    from trainer.data.table_files import column_named, read_table
    from trainer.data.tables import check_complete, plain

    fitted = plain(data["preprocessing"])
    check_fitted(fitted, inputs=int(data["shape"][0]) if data.get("shape") else None)
    table = read_table(data["path"], encoding=data.get("encoding"), delimiter=data.get("delimiter"))
    names = [column_named(table, feature["name"]) for feature in fitted["features"]]
    rows = np.arange(len(table))
    if not len(rows):
        raise UserError(f"data.path={data['path']} has no rows to predict")
    check_complete(table, names, rows, data.get("missing", "fill"))
    result = encoded(table, fitted["features"])
    for note in encoding_notes(result, f"data.path={data['path']}"):
        log.info(note)
    x = result.x if statistics is None else Standardize(*statistics, channel_dim=1)(result.x)
    id_name, ids = row_ids(table, data.get("id_column"), required=id_required)
    target = fitted["target"]
    truth = None
    if target["name"] in table.columns:
        numbers, bad = table.numbers(target["name"])
        values = numbers.map(number_text, na_action="ignore") if target["numbers"] and not bad else table.texts(
            target["name"])
        truth = values.fillna("").tolist()
    return Inputs(TensorDataset(x, torch.arange(len(x)), torch.ones(len(x), dtype=torch.bool)), ids, id_name,
                  truth)


def row_ids(table: Table, id_column: str | None, *, required: bool) -> tuple[str, list[str]]:
    """(column name, ids) of a table's rows: data.id_column's values, or the row numbers (from 1) when it is null or,
    not named on this command line, the file lacks it."""
    from trainer.data.table_files import column_named

    if id_column and (required or id_column in table.columns):
        return column_named(table, id_column, "data.id_column"), table.texts(id_column).fillna("").tolist()
    if id_column:
        log.info(f"data.path={table.path} has no column {id_column} (the training run's data.id_column): rows are "
                 "numbered instead")
    return "row", [str(k + 1) for k in range(len(table))]


class ImagePaths(Dataset):
    """Image files decoded on access by `transform` (a path -> tensor of `shape`: FileDecoder, then the training
    split's standardisation); one that cannot be decoded comes as zeros, readable False."""

    def __init__(self, paths: list[str], transform: Callable, shape: list[int]):
        self.paths, self.transform, self.shape = paths, transform, shape

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, bool]:
        try:
            return self.transform(self.paths[i]), i, True
        except UserError:  # UnreadableImage: named afterwards by why()
            return torch.zeros(self.shape), i, False

    def why(self, i: int) -> str:
        try:
            self.transform(self.paths[i])
        except UserError as error:
            return first_line(error)
        return ""


def image_files(data: Mapping, statistics: tuple[list[float], list[float]] | None) -> Inputs:
    """Every image file under data.root (directly in it, or in class folders), read as image folders are read
    (trainer/data/scan.py: hidden entries and debris skipped, links followed once, regular files only), sorted, and
    decoded as training decoded them (FileDecoder: upright by EXIF, within data.max_image_pixels) at the channels and
    size the model was trained on; its id is its path."""
    from torchvision.transforms import v2

    from trainer.config.paths import check_folder
    from trainer.data.images import PILLOW_LIMIT, FileDecoder
    from trainer.data.scan import IMAGE_EXTENSIONS, Skipped, log_skipped
    from trainer.data.scan import image_files as scanned

    root = data.get("root")
    if not root:
        raise UserError("mode=predict of an image model needs data.root: point it at the folder of images to predict")
    top = check_folder(str(root), "data.root", fix="point data.root at the folder of images to predict")
    skipped = Skipped()
    paths = sorted(scanned(top, top, skipped))
    log_skipped(skipped, top)
    if not paths:
        raise UserError(f"data.root={root} holds no image files ({', '.join(IMAGE_EXTENSIONS)}), directly or in "
                        "subfolders: point it at the images to predict")
    shape = list(data["shape"])
    transform = FileDecoder(channels=shape[0], image_size=shape[1],
                            max_pixels=data.get("max_image_pixels") or PILLOW_LIMIT)
    if statistics is not None:
        transform = v2.Compose([transform, Standardize(*statistics)])
    dataset = ImagePaths(paths, transform, shape)
    log.info(f"data.root={root}: {len(paths)} image files, decoded at {shape[1]} px with {shape[0]} channels as the "
             "model was trained")
    return Inputs(dataset, paths, "path", why=dataset.why)

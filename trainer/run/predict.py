"""mode=predict: a trained model on new inputs that need no labels, writing predictions.csv in a new run folder. The
checkpoint is data as for mode=eval (its stored config checked, its model and loss rebuilt from losslab's conf/); the
inputs (a table's rows, or image files) are prepared exactly as its training data was, from the stored data config
(trainer/data/unlabelled.py); the command line chooses only where they are and how to read them.

Exit status: 0 when every input was predicted; 3 (SkippedInputs) when some image files could not be read: each is
named in the log, the others are in predictions.csv, and status.json says "partial". A script that goes on with
predictions.csv can tell "all of them" (0) from "some of them" (3) from "none" (2: nothing could be read, or a
mistake on the command line).
"""
from __future__ import annotations

import csv
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from trainer.config import build, check_stored, override_key
from trainer.data import make_loader, new_inputs
from trainer.data.unlabelled import Inputs, input_keys
from trainer.errors import UserError, first_line
from trainer.logs import log
from trainer.metrics import REGRESSION
from trainer.run import checkpoint, rundir
from trainer.run.evaluation import own_config
from trainer.runtime import build_runtime, distributed, prepare_model

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from torch import nn

    from trainer.losses import Objective
    from trainer.runtime import Runtime

FILE_NAME = "predictions.csv"


class SkippedInputs(UserError):
    """Some inputs could not be read; the others were predicted and written."""
    exit_code = 3
    status = "partial"


def predict(cfg: DictConfig, place: rundir.Place, *, overrides: Sequence[str] = ()) -> dict:
    """Predict every input the command names with the model of ckpt_path; write predictions.csv into `place`.

    Raises:
        UserError: the checkpoint or the command line (a key the model was trained with, a missing feature column,
            no inputs), before any prediction; SkippedInputs after writing predictions.csv when some inputs could not
            be read.
    """
    state = checkpoint.load(cfg.ckpt_path)
    check_stored(state["config"], source=f"ckpt_path={cfg.ckpt_path}", overrides=overrides)
    config = predict_config(state["config"], cfg, overrides)
    typed = [override_key(o) for o in overrides]
    inputs = new_inputs(config.data, typed=typed)  # read and checked before the model is built
    rundir.check_writable(place.run_dir)
    runtime = build_runtime(config.trainer, config.data.shape)
    model, objective = build(config.model, "model").to(runtime.device), build(config.loss, "loss").to(runtime.device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise UserError(f"ckpt_path={cfg.ckpt_path} does not fit its own model config ({first_line(error)})") from None
    prepare_model(model, runtime.memory_format, config.trainer.compile)
    outputs, positions, skipped = predicted(model, inputs, config.data, runtime)
    classes = state.get("classes") or [str(k) for k in range(config.data.num_classes)]
    header, rows = prediction_rows(objective, outputs, positions, inputs,
                                   classes=None if config.data.get("task") == REGRESSION else classes)
    path = place.run_dir / FILE_NAME
    if distributed.is_main():  # under torchrun every rank predicts everything; one writes
        write_csv(path, header, rows)
    log.info(f"predicted {len(rows)} of {len(inputs.ids)} inputs with {cfg.ckpt_path} -> {path}")
    if skipped:
        named = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        raise SkippedInputs(f"{len(skipped)} of {len(inputs.ids)} inputs could not be read and were skipped ({named}; "
                            f"the log says why), and {path} has the other {len(rows)}: replace or remove those files "
                            "and predict again")
    return {"predictions": str(path), "rows": len(rows), "skipped": 0, "ckpt_path": str(cfg.ckpt_path)}


def predict_config(stored: dict, cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The checkpoint's own config, with this command's trainer section and the data keys that say where the new
    inputs are and how to read them (input_keys); any other data key the command changes is refused, because the
    model takes only what it was trained on."""
    typed = [override_key(o) for o in overrides]
    config = own_config(stored, cfg, overrides, does="uses")
    allowed = input_keys(stored["data"])
    for key in (k for k in typed if k.startswith("data.")):
        name, value = key.split(".", 1)[1], OmegaConf.select(cfg, key)
        if name in allowed:
            config.data[name] = value
        elif value != OmegaConf.select(config, key, default=None):
            trained = OmegaConf.select(config, key, default=None)
            raise UserError(f"mode=predict prepares new inputs as ckpt_path={cfg.ckpt_path} was trained (with "
                            f"{key}={as_written(trained)}), so {key}={as_written(value)} cannot apply: remove it; the "
                            f"data keys predict takes are {', '.join(f'data.{k}' for k in allowed)}")
    return config


def as_written(value: object) -> str:
    """A config value as it is written on the command line: null, [a,b], 16."""
    value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    if isinstance(value, list):
        return "[" + ",".join(as_written(v) for v in value) + "]"
    return "null" if value is None else str(value)


@torch.inference_mode()
def predicted(model: nn.Module, inputs: Inputs, cfg_data: DictConfig,
              runtime: Runtime) -> tuple[torch.Tensor, list[int], list[str]]:
    """The model's outputs [n, outputs] for every readable input, their positions in `inputs`, and one line per
    input that could not be read (logged as it is met)."""
    model.eval()
    loader = make_loader(inputs.dataset, batch_size=cfg_data.batch_size, shuffle=False,
                         num_workers=cfg_data.num_workers)
    outputs, positions, skipped = [], [], []
    for x, position, readable in tqdm(loader, desc="predict", disable=not runtime.show_progress, leave=False,
                                      dynamic_ncols=True):
        for k in position[~readable].tolist():
            skipped.append(inputs.ids[k])
            log.warning(f"skipped: {inputs.why(k)}")
        if readable.any():
            x, _ = runtime.to_device(x[readable], position[readable])
            with runtime.precision.autocast():
                outputs.append(model(x).float().cpu())
            positions += position[readable].tolist()
    if not positions:
        raise UserError(f"none of the {len(inputs.ids)} inputs could be read ({inputs.why(0)}): check data.root")
    return torch.cat(outputs), positions, skipped


def prediction_rows(objective: Objective, outputs: torch.Tensor, positions: list[int], inputs: Inputs, *,
                    classes: list[str] | None) -> tuple[list[str], list[list]]:
    """predictions.csv: per input its id (and its true value, when a table has the target column), then the
    predicted class, its probability and every class's probability (the loss's own probabilities: softmax, or the
    normalised sigmoids of a one-vs-rest loss), or the predicted value in the target's units."""
    truth = [] if inputs.truth is None else ["true"]
    if classes is None:
        values = objective.predict(outputs)
        header = [inputs.id_name, *truth, "predicted"] if values.shape[1] == 1 else [
            inputs.id_name, *truth, *(f"predicted_{k}" for k in range(values.shape[1]))]
        body = [[f"{v:.6g}" for v in row] for row in values.tolist()]
    else:
        p = objective.log_probabilities(outputs).exp()
        confidence, predicted = p.max(dim=1)
        header = [inputs.id_name, *truth, "predicted", "probability", *(f"probability_{name}" for name in classes)]
        body = [[classes[k], f"{c:.6g}", *(f"{v:.6g}" for v in row)]
                for k, c, row in zip(predicted.tolist(), confidence.tolist(), p.tolist())]
    rows = [[inputs.ids[i], *([inputs.truth[i]] if truth else []), *values] for i, values in zip(positions, body)]
    return header, rows


def write_csv(path: str | Path, header: list[str], rows: list[list]) -> None:
    """UTF-8 with a byte-order mark, so Excel shows Korean (any non-ASCII) class names and ids as they are."""
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)

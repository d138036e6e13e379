"""The test samples the best checkpoint gets most wrong: the TOP_LOSSES with the highest loss (the run's own
objective, per sample), listed in top_losses.csv for every dataset and, for image data, drawn in top_losses.png
(and TensorBoard's `top_losses/test`) labelled true / predicted / probability of the prediction."""
from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from typing import TYPE_CHECKING

import torch

from trainer.runtime import distributed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trainer.losses import Objective
    from trainer.run.assemble import Assembly
    from trainer.run.tracking import Tracker

TOP_LOSSES = 16
FILE_NAME = "top_losses"


@dataclass
class Mistake:
    """One row of top_losses.csv. `index` is the sample's position in the test split; `true` and `predicted` are
    class indices, their names are filled in where the dataset has them."""
    index: int
    true: int
    predicted: int
    probability: float        # the model's probability of its prediction (its confidence)
    true_probability: float   # its probability of the true class
    loss: float
    true_name: str = ""
    predicted_name: str = ""


@dataclass
class Miss:
    """One row of a regression's top_losses.csv: the test sample's position, its targets and the predictions (in
    the targets' own units; several values joined by spaces), the absolute error (summed over targets) and the loss."""
    index: int
    target: str
    prediction: str
    abs_error: float
    loss: float


@torch.inference_mode()
def worst_predictions(objective: Objective, outputs: torch.Tensor, targets: torch.Tensor, *,
                      k: int = TOP_LOSSES) -> list[Miss]:
    """A regression's k test samples with the highest loss, highest first (indices as in `worst`)."""
    losses = objective.per_sample(outputs, targets).float()
    predictions = objective.predict(outputs.float())
    text = lambda values: " ".join(f"{v:.6g}" for v in values.tolist())
    return [Miss(index=i * distributed.world_size(), target=text(targets[i]), prediction=text(predictions[i]),
                 abs_error=float((predictions[i] - targets[i]).abs().sum()), loss=float(losses[i]))
            for i in losses.argsort(descending=True, stable=True)[:k].tolist()]


@torch.inference_mode()
def worst(objective: Objective, logits: torch.Tensor, labels: torch.Tensor, *, classes: Sequence[object] | None = None,
          k: int = TOP_LOSSES) -> list[Mistake]:
    """The k samples with the highest loss, highest first. Under torchrun, rank 0's share of the test split (every
    world_size-th sample), with indices into the whole split."""
    losses = objective.per_sample(logits, labels).float()
    p = objective.log_probabilities(logits.float()).exp()
    confidence, predicted = p.max(dim=1)
    rows = []
    for i in losses.argsort(descending=True, stable=True)[:k].tolist():
        true, guess = int(labels[i]), int(predicted[i])
        rows.append(Mistake(index=i * distributed.world_size(), true=true, predicted=guess,
                            probability=float(confidence[i]), true_probability=float(p[i, true]),
                            loss=float(losses[i]), true_name=name_of(classes, true),
                            predicted_name=name_of(classes, guess)))
    return rows


def name_of(classes: Sequence[object] | None, label: int) -> str:
    return "" if classes is None else str(classes[label])


def record(parts: Assembly, test: dict, *, tracker: Tracker, step: int) -> None:
    """top_losses.csv, and for image data top_losses.png and the TensorBoard image, from an evaluation kept with
    its outputs (loop.evaluate(..., keep_outputs=True)). Only rank 0 writes."""
    if not distributed.is_main() or "logits" not in test:  # an empty test split has nothing to list
        return
    device = parts.runtime.device
    outputs, labels = test["logits"].to(device), test["labels"].to(device)
    regression = parts.objective.log_probabilities is None
    rows = (worst_predictions(parts.objective, outputs, labels) if regression
            else worst(parts.objective, outputs, labels, classes=parts.classes))
    with open(tracker.run_dir / f"{FILE_NAME}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([field.name for field in fields(Miss if regression else Mistake)])
        writer.writerows(astuple(row) for row in rows)
    if len(parts.cfg.data.shape) == 3 and not regression:  # images: C, H, W
        from trainer.run.figures import top_losses_figure

        images = [parts.splits.test[row.index][0].detach().float().cpu().numpy() for row in rows]
        labels = [f"{row.true_name or row.true} / {row.predicted_name or row.predicted} / {row.probability:.2f}"
                  for row in rows]
        tracker.picture(f"{FILE_NAME}/test", top_losses_figure, {
            "images": images, "labels": labels, "title": "highest test losses: true / predicted / probability"},
            step, save_as=f"{FILE_NAME}.png")

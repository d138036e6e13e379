"""The test samples the best checkpoint gets most wrong: the TOP_LOSSES with the highest loss (the run's own
objective, per sample), listed in top_losses.csv for every dataset and, for image data, drawn in top_losses.png
(and TensorBoard's `top_losses/test`) labelled true / predicted / probability of the prediction."""
import csv
from dataclasses import astuple, dataclass, fields

import torch

from trainer import distributed

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


@torch.inference_mode()
def worst(objective, logits, labels, *, classes=None, k=TOP_LOSSES):
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


def name_of(classes, label):
    return "" if classes is None else str(classes[label])


def record(parts, test, *, tracker, step):
    """top_losses.csv, and for image data top_losses.png and the TensorBoard image, from an evaluation kept with
    its outputs (loop.evaluate(..., keep_outputs=True)). Only rank 0 writes."""
    if not distributed.is_main() or "logits" not in test:  # an empty test split has nothing to list
        return
    device = parts.runtime.device
    rows = worst(parts.objective, test["logits"].to(device), test["labels"].to(device), classes=parts.classes)
    with open(tracker.run_dir / f"{FILE_NAME}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([field.name for field in fields(Mistake)])
        writer.writerows(astuple(row) for row in rows)
    if len(parts.cfg.data.shape) == 3:  # images: C, H, W
        from trainer.figures import top_losses_figure

        images = [parts.splits.test[row.index][0] for row in rows]
        labels = [f"{row.true_name or row.true} / {row.predicted_name or row.predicted} / {row.probability:.2f}"
                  for row in rows]
        figure = top_losses_figure(images, labels, "highest test losses: true / predicted / probability")
        tracker.figure(f"{FILE_NAME}/test", figure, step, save_as=f"{FILE_NAME}.png")

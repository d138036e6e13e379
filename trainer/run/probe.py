"""Before the first step: one tiny batch through the built model and loss, so a model that does not fit the data
(a shape, a head of too few outputs, labels the loss cannot take) fails here in one sentence, not deep in torch (on
CUDA an out-of-range label is an opaque device-side assert)."""
import torch
from torch import nn

from trainer.data import Splits, labels_of, make_loader
from trainer.errors import UserError, first_line

# what to do when labels exceed the model's outputs: a new run sizes its head by data.num_classes; a trained one has
# its head already
HEAD_FIX = {"training": "set data.num_classes={needed} (labels must be 0..num_classes-1)",
            "evaluation": "the checkpoint's model has {outputs}: evaluate it on data of its own classes"}


def check_model_fits_data(model: nn.Module, objective: nn.Module, splits: Splits, device: torch.device, *,
                          shape: list[int], classifies: bool = True, fix: str = HEAD_FIX["training"]) -> None:
    """Run one tiny batch and check the labels, so a mismatch fails here in one sentence, not deep in torch
    (on CUDA an out-of-range label is an opaque device-side assert). `shape`: data.shape, which the model was
    built for."""
    # evaluating new data may leave train empty (a table whose split column names only test rows)
    sample = splits.train if splits.train is not None and len(splits.train) else splits.test
    x, y = next(iter(make_loader(sample, batch_size=2, shuffle=False)))
    if list(x.shape[1:]) != shape:  # the config says one shape (a data.shape override) and the data hold another
        raise UserError(f"data.shape={shape} does not describe the data, whose samples are {list(x.shape[1:])}: leave "
                        "data.shape as the data option sets it (change data.channels or data.image_size where the "
                        "data option has them)")
    logits = probe(model, x.to(device))
    if logits.dim() != 2:
        raise UserError(f"the model returns logits of shape {list(logits.shape)}, not [batch, classes]: check model")
    num_classes = logits.shape[1]
    if not classifies:
        check_regression_outputs(logits, y, objective, device)
        return
    for name, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        labels = labels_of(dataset)
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            outputs = f"{num_classes} outputs"
            raise UserError(
                f"the {name} split has labels from {int(labels.min())} to {int(labels.max())} but the model's head has "
                f"{outputs}: " + fix.format(needed=int(labels.max()) + 1, outputs=outputs)
            )
    try:
        with torch.no_grad():
            objective(logits, y.to(device))
    except (RuntimeError, ValueError) as error:
        raise UserError(f"the loss cannot compare the model's output with the labels ({error}): check loss") from None


def check_regression_outputs(outputs: torch.Tensor, targets: torch.Tensor, objective: nn.Module,
                             device: torch.device) -> None:
    if outputs.shape[1:] != targets.shape[1:]:
        raise UserError(f"the model returns {outputs.shape[1]} outputs per sample but the data have "
                        f"{list(targets.shape[1:])} targets: set data.num_classes={targets.shape[-1]} (for regression, "
                        "the number of targets)")
    with torch.no_grad():
        objective(outputs, targets.to(device))


def probe(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's output for `x`, in eval mode: a probe must not move BatchNorm statistics or draw dropout's
    random numbers."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except (RuntimeError, ValueError) as error:
        raise UserError(f"the model cannot take samples of data.shape={list(x.shape[1:])} ({first_line(error)}): "
                        "check data.shape and the model's settings") from None
    finally:
        model.train(was_training)

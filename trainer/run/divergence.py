"""A run whose loss or weights stop being finite numbers: the one check (`check_finite`, on values already read back
from the device), the weights' check before a checkpoint is written, and the run's one message (`Diverged`)."""
from __future__ import annotations

import math

import torch
from torch import nn

from trainer.errors import UserError
from trainer.run.rundir import DIVERGED


class NonFinite(Exception):
    """A loss or the weights stopped being finite numbers; the run turns it into `Diverged`."""

    def __init__(self, what: str, value: float | str, step: int):
        super().__init__(f"the {what} became {value} by step {step}")
        self.what, self.value, self.step = what, value, step


def check_finite(what: str, value: float, step: int) -> None:
    """The one divergence check: `value` is a float already read back from the device."""
    if not math.isfinite(value):
        raise NonFinite(what, value, step)


def weights_are_finite(model: nn.Module) -> bool:
    # one sync for the whole model: a nan/inf anywhere must never replace a good checkpoint
    return bool(torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all())


class Diverged(UserError):
    """The training loss or the weights stopped being finite numbers; one message wherever it was noticed."""

    def __init__(self, bad: NonFinite, *, epoch: int, steps: int, lr: float, kept: str):
        super().__init__(f"the {bad.what} became {bad.value} in epoch {epoch} by step {bad.step} of {steps} "
                         f"(learning rate {lr:g}): lower optimizer.lr or pick another loss; {kept}")
        self.epoch, self.lr = epoch, lr

    status = DIVERGED  # what status.json says, with the details

    @property
    def details(self) -> dict[str, float]:
        return {"epoch": self.epoch, "lr": self.lr}

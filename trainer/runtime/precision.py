"""Numeric precision of the training step (`trainer.precision`).

`32` computes in float32. `bf16` runs forward and loss under autocast to bfloat16: it has float32's range, so
gradients need no scaling; on the CPU it works on any machine, on a GPU it needs Ampere or newer. `16-mixed` runs
them under autocast to float16 and scales the loss with a GradScaler so small gradients do not underflow to zero;
it is a CUDA feature, and asking for it on another device is a config mistake (use bf16 there).
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch

from trainer.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

AUTOCAST_DTYPES = {"32": None, "bf16": torch.bfloat16, "16-mixed": torch.float16}
NO_AUTOCAST = contextlib.nullcontext()  # reusable: float32 steps build no context object


class Precision:
    """The autocast context for the forward pass and loss, and how to backpropagate and step the optimizer."""

    def __init__(self, name: str | int = "32", device: torch.device = torch.device("cpu")):
        name = str(name)  # `trainer.precision=32` arrives as an int
        if name not in AUTOCAST_DTYPES:
            raise UserError(f"trainer.precision={name} is not known: use one of {', '.join(AUTOCAST_DTYPES)}")
        if name == "16-mixed" and device.type != "cuda":
            raise UserError(f"trainer.precision=16-mixed needs a CUDA GPU (float16 with a GradScaler), but the device "
                            f"is {device.type}: use trainer.precision=bf16 or 32")
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("trainer.precision=bf16 needs a GPU with bfloat16 support (Ampere or newer): "
                            "use trainer.precision=16-mixed on this GPU")
        self.name, self.device_type, self.dtype = name, device.type, AUTOCAST_DTYPES[name]
        self.scaler = torch.amp.GradScaler(device.type) if name == "16-mixed" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return NO_AUTOCAST
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the loss scale, in place, so that they can be measured and clipped; the scaler's
        step then knows not to do it again. Without a scaler the gradients are already true."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer, closure: Callable[[], torch.Tensor]) -> None:
        """Step the optimizer exactly once for the batch. A GradScaler cannot drive a closure that the optimizer
        calls several times (LBFGS), so with one the closure runs once here (and unscales, once) and the scaler
        steps and updates."""
        if self.scaler is None:
            optimizer.step(closure)
            return
        closure()
        self.scaler.step(optimizer)
        self.scaler.update()

    def check_optimizer(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Before training: refuse optimizers that must re-evaluate the loss inside step() when the loss is scaled."""
        if self.scaler is not None and isinstance(optimizer, torch.optim.LBFGS):
            raise UserError("optimizer=lbfgs re-evaluates the loss inside its step, which a GradScaler cannot scale: "
                            "use trainer.precision=32 or bf16 with optimizer=lbfgs")


FULL = Precision("32")

"""Optimizer and learning-rate schedule, built from the `optimizer` and `scheduler` config groups. Both are tried on
a throwaway parameter before the run starts (one optimizer step, the schedule stepped through the whole run), so a
value torch rejects or divides by, found only once it steps, is one sentence before training, not a traceback in
some epoch."""
from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from trainer.config import build
from trainer.config.values import shown
from trainer.errors import UserError, first_line
from trainer.metrics import MONITORABLE

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch.optim.lr_scheduler import LRScheduler


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    # frozen parameters never reach the optimizer: no state is kept for them and weight decay cannot move them
    return [p for p in model.parameters() if p.requires_grad]


def build_optimizer(cfg_optimizer: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = trainable_parameters(model)
    if not params:
        raise UserError("the model has no trainable parameters: unfreeze some (e.g. model.freeze_backbone=false)")
    make = build(cfg_optimizer, "optimizer")
    try:
        optimizer = make(params=params)
    except (TypeError, ValueError) as error:  # e.g. an unknown keyword or betas outside [0, 1)
        raise UserError(f"optimizer {cfg_optimizer._target_} rejected its config: {error}") from None
    dry_step(make, cfg_optimizer, device=params[0].device)
    return optimizer


def dry_step(make: Callable[..., torch.optim.Optimizer], cfg_optimizer: DictConfig, *, device: torch.device) -> None:
    """One step of the configured optimizer on a throwaway parameter on the run's device, with a closure as the loop
    gives it (LBFGS calls it several times): a setting torch accepts when building but not when stepping fails here.

    Raises:
        UserError: naming the optimizer's settings and torch's reason.
    """
    weight = torch.tensor([1.0, -2.0], device=device, requires_grad=True)
    scale = torch.tensor([1.0, 10.0], device=device)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (weight * scale).pow(2).sum()  # an ill-conditioned bowl: LBFGS needs several iterations
        loss.backward()
        return loss

    try:
        optimizer = make(params=[weight])
        optimizer.step(closure)
    except Exception as error:  # whatever torch raises: the only input is the user's config
        raise UserError(f"optimizer {cfg_optimizer._target_} fails its first step with "
                        f"{settings(cfg_optimizer, 'optimizer')} ({first_line(error)}): change the setting torch names"
                        ) from None


def settings(node: DictConfig, key: str) -> str:
    """A config node's own settings as they are typed: "optimizer.lr=0.001, optimizer.betas=[0.9,0.999]"."""
    values = OmegaConf.to_container(node, resolve=True)
    return ", ".join(f"{key}.{name}={shown(value)}" for name, value in values.items() if not name.startswith("_"))


class Schedule:
    """When and how the loop steps the learning-rate scheduler: after every batch, or after every epoch,
    optionally on a validation metric (ReduceLROnPlateau). With no scheduler every call does nothing."""

    def __init__(self, scheduler: LRScheduler | None, interval: str, monitor: str | None):
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor

    def after_batch(self) -> None:
        if self.scheduler is not None and self.interval == "step":
            self.scheduler.step()

    def after_epoch(self, metrics: dict) -> None:
        if self.scheduler is None or self.interval != "epoch":
            return
        if self.monitor is None:
            self.scheduler.step()
        else:
            self.scheduler.step(metrics[self.monitor])

    def state_dict(self) -> dict[str, object] | None:
        return None if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, object] | None) -> None:
        if self.scheduler is not None and state is not None:
            self.scheduler.load_state_dict(state)


def build_schedule(cfg_scheduler: DictConfig, optimizer: torch.optim.Optimizer | None, *, steps_per_epoch: int,
                   epochs: int) -> "Schedule":
    """The learning-rate schedule of `optimizer`, once the same schedule has been stepped through the whole run on a
    throwaway copy of it (`dry_run`).

    Raises:
        UserError: an unknown interval or monitor, or a schedule torch refuses or that reaches a rate that is not a
            finite number >= 0, naming scheduler.build's settings.
    """
    interval, monitor = cfg_scheduler.interval, cfg_scheduler.monitor
    if interval not in ("step", "epoch"):
        raise UserError(f"scheduler.interval={interval} is not known: use step or epoch")
    if monitor is not None and monitor not in MONITORABLE:
        raise UserError(f"scheduler.monitor={monitor} is not known: use one of {', '.join(MONITORABLE)} or null")
    if cfg_scheduler.build is None:
        return Schedule(None, interval, monitor)
    steps = steps_per_epoch * epochs if interval == "step" else epochs
    dry_run(cfg_scheduler, throwaway_copy(optimizer), steps=steps)
    return Schedule(make_scheduler(cfg_scheduler, optimizer, steps), interval, monitor)


def make_scheduler(cfg_scheduler: DictConfig, optimizer: torch.optim.Optimizer, steps: int) -> LRScheduler:
    make = build(cfg_scheduler.build, "scheduler")
    # a scheduler stepped every batch is told how many batches the whole run has (OneCycleLR needs it)
    return make(optimizer, total_steps=steps) if cfg_scheduler.interval == "step" else make(optimizer)


def throwaway_copy(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """An optimizer of the same class with the same settings in every parameter group, over one throwaway
    parameter per group: what a schedule changes (the groups' rates, momenta) without touching the run's."""
    groups = [{**{k: v for k, v in group.items() if k != "params"},
               "params": [torch.zeros(1, device=group["params"][0].device, requires_grad=True)]}
              for group in optimizer.param_groups]
    return type(optimizer)(groups)


def dry_run(cfg_scheduler: DictConfig, optimizer: torch.optim.Optimizer, *, steps: int) -> None:
    """Build the schedule on `optimizer` and step it as often as the run will (`steps`: batches or epochs, as
    scheduler.interval says; a monitored schedule gets a metric that never improves), checking every rate.
    About 10 microseconds a step on a CPU.

    Raises:
        UserError: torch refuses the settings (a division by zero, a value out of its range) or a rate is not a
            finite number >= 0.
    """
    unit, units = ("batch", "batches") if cfg_scheduler.interval == "step" else ("epoch", "epochs")
    where = f"the schedule {cfg_scheduler.build._target_} with {settings(cfg_scheduler.build, 'scheduler.build')}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "lr_scheduler.step() before optimizer.step()": nothing trains here
        try:
            scheduler = make_scheduler(cfg_scheduler, optimizer, steps)
            for step in range(1, steps + 1):
                scheduler.step(*([1.0] if cfg_scheduler.monitor is not None else []))
                bad = [lr for lr in (group["lr"] for group in optimizer.param_groups)
                       if not (math.isfinite(lr) and lr >= 0)]
                if bad:
                    raise UserError(f"{where} sets the learning rate to {bad[0]} after {unit} {step}: change the "
                                    "setting that leads there")
        except UserError:
            raise
        except Exception as error:  # whatever torch raises: the only inputs are the user's settings and run length
            raise UserError(f"{where} fails over this run's {steps} {units} ({first_line(error)}): change the "
                            f"setting torch names (trainer.epochs and data.batch_size set the run's length)") from None


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return optimizer.param_groups[0]["lr"]

"""Optimizer and learning-rate schedule, built from the `optimizer` and `scheduler` config groups."""
import torch
from omegaconf import DictConfig
from torch import nn

from trainer.config import build
from trainer.errors import UserError
from trainer.metrics import MONITORABLE


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    # frozen parameters never reach the optimizer: no state is kept for them and weight decay cannot move them
    return [p for p in model.parameters() if p.requires_grad]


def build_optimizer(cfg_optimizer: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = trainable_parameters(model)
    if not params:
        raise UserError("the model has no trainable parameters: unfreeze some (e.g. model.freeze_backbone=false)")
    make = build(cfg_optimizer, "optimizer")
    try:
        return make(params=params)
    except (TypeError, ValueError) as error:  # e.g. an unknown keyword or betas outside [0, 1)
        raise UserError(f"optimizer {cfg_optimizer._target_} rejected its config: {error}") from None


class Schedule:
    """When and how the loop steps the learning-rate scheduler: after every batch, or after every epoch,
    optionally on a validation metric (ReduceLROnPlateau). With no scheduler every call does nothing."""

    def __init__(self, scheduler, interval, monitor):
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

    def state_dict(self):
        return None if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state):
        if self.scheduler is not None and state is not None:
            self.scheduler.load_state_dict(state)


def build_schedule(cfg_scheduler: DictConfig, optimizer: torch.optim.Optimizer | None, *, steps_per_epoch: int,
                   epochs: int) -> "Schedule":
    interval, monitor = cfg_scheduler.interval, cfg_scheduler.monitor
    if interval not in ("step", "epoch"):
        raise UserError(f"scheduler.interval={interval} is not known: use step or epoch")
    if monitor is not None and monitor not in MONITORABLE:
        raise UserError(f"scheduler.monitor={monitor} is not known: use one of {', '.join(MONITORABLE)} or null")
    if cfg_scheduler.build is None:
        return Schedule(None, interval, monitor)
    make = build(cfg_scheduler.build, "scheduler")
    # a scheduler stepped every batch is told how many batches the whole run has (OneCycleLR needs it)
    scheduler = make(optimizer, total_steps=steps_per_epoch * epochs) if interval == "step" else make(optimizer)
    return Schedule(scheduler, interval, monitor)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return optimizer.param_groups[0]["lr"]

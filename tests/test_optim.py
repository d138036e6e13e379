"""Optimizer and schedule: only trainable parameters reach the optimizer, and the schedule steps when its config
says."""
import pytest
import torch
from torch import nn

from tests.conftest import compose_config, options
from trainer.errors import UserError
from trainer.optim import build_optimizer, build_schedule


def test_frozen_parameters_never_reach_the_optimizer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    optimizer = build_optimizer(compose_config(["optimizer=sgd"]).optimizer, model)
    assert optimizer.param_groups[0]["params"] == list(model[1].parameters())
    model.requires_grad_(False)
    with pytest.raises(UserError, match="the model has no trainable parameters"):
        build_optimizer(compose_config().optimizer, model)


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_every_schedule_steps_when_its_config_says(scheduler):
    cfg = compose_config([f"scheduler={scheduler}", "optimizer=sgd", "trainer.epochs=4"])
    optimizer = build_optimizer(cfg.optimizer, nn.Linear(2, 2))
    schedule = build_schedule(cfg.scheduler, optimizer, steps_per_epoch=5, epochs=4)
    rates = []
    for _ in range(4):
        for _ in range(5):
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch({"loss/val": 1.0, "acc/val": 0.5})  # no improvement: plateau cuts
        rates.append(optimizer.param_groups[0]["lr"])
    expected_changes = {"none": False, "step": False, "cosine": True, "onecycle": True, "plateau": True}
    assert (len(set(rates)) > 1) == expected_changes[scheduler], rates


def test_an_unknown_interval_or_monitor_is_one_sentence():
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(UserError, match="scheduler.interval=batch is not known"):
        build_schedule(compose_config(["scheduler.interval=batch"]).scheduler, optimizer, steps_per_epoch=1, epochs=1)

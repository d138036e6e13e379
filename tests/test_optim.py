"""Optimizer and schedule: only trainable parameters reach the optimizer, and the schedule steps when its config
says."""
import pytest
import torch
from torch import nn

from tests.conftest import TINY, compose_config, options, run
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


# --- the dry run before training: what torch rejects, or divides by, only once it steps ---------------------------


def test_a_schedule_that_divides_by_zero_only_for_this_runs_length_is_one_sentence_before_training(tmp_path):
    # OneCycleLR's warm-up ends at pct_start x total_steps - 1 = 0 here (140 samples / 14 = 10 batches): it divides
    # by zero on its first step, a value no single key's rule can see
    with pytest.raises(UserError, match=r"^the schedule torch.optim.lr_scheduler.OneCycleLR with "
                                        r"scheduler.build.max_lr=0.001, scheduler.build.pct_start=0.1 fails over this "
                                        r"run's 10 batches \(float division by zero\): change the setting torch names"):
        run([*TINY, "scheduler=onecycle", "scheduler.build.pct_start=0.1", "data.batch_size=14", "trainer.epochs=1"],
            tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides,says", [
    (["scheduler=step", "scheduler.build.step_size=0"], r"StepLR with scheduler.build.step_size=0, "
                                                         r"scheduler.build.gamma=0.3 fails over this run's 4 epochs "
                                                         r"\(integer modulo by zero\)"),
    (["scheduler=cosine", "scheduler.build.T_max=0"], r"CosineAnnealingLR .* \(integer modulo by zero\)"),
    (["scheduler=step", "scheduler.build.step_size=1", "scheduler.build.gamma=1e300"],
     r"StepLR with .* sets the learning rate to inf after epoch 2: change the setting that leads there"),
    (["scheduler=onecycle", "optimizer=adagrad"], r"OneCycleLR .* \(optimizer must support momentum or beta1 with "
                                                  r"`cycle_momentum` option enabled\)"),
])
def test_the_schedule_is_stepped_through_the_whole_run_before_it_is_used(overrides, says):
    cfg = compose_config(overrides)  # past the table of values: the dry run's own cases
    optimizer = build_optimizer(cfg.optimizer, nn.Linear(2, 2))
    with pytest.raises(UserError, match=says):
        build_schedule(cfg.scheduler, optimizer, steps_per_epoch=5, epochs=4)


def test_the_dry_run_leaves_the_runs_optimizer_and_random_streams_as_they_were():
    cfg = compose_config(["scheduler=onecycle", "optimizer=sgd", "trainer.epochs=2"])
    optimizer, alone = (build_optimizer(cfg.optimizer, nn.Linear(2, 2)) for _ in range(2))
    rng = torch.get_rng_state()
    schedule = build_schedule(cfg.scheduler, optimizer, steps_per_epoch=3, epochs=2)
    assert torch.equal(torch.get_rng_state(), rng)
    fresh = torch.optim.lr_scheduler.OneCycleLR(alone, max_lr=0.01, total_steps=6, pct_start=0.3)
    assert schedule.scheduler.state_dict() == fresh.state_dict()  # as if built alone: the dry run touched a copy
    assert [dict(g, params=None) for g in optimizer.param_groups] == [dict(g, params=None) for g in alone.param_groups]


def test_an_optimizer_setting_torch_refuses_only_when_stepping_is_one_sentence():
    cfg = compose_config(["optimizer=lbfgs", "optimizer.history_size=0"])  # past the table: the dry step's own case
    with pytest.raises(UserError, match=r"^optimizer torch.optim.LBFGS fails its first step with optimizer.lr=1.0, "
                                        r"optimizer.max_iter=5, optimizer.history_size=0, "
                                        r"optimizer.line_search_fn=strong_wolfe \(pop from empty list\): change the "
                                        r"setting torch names$"):
        build_optimizer(cfg.optimizer, nn.Linear(2, 2))
    with pytest.raises(UserError, match=r"optimizer.capturable=true \(If capturable=True"):
        build_optimizer(compose_config(["+optimizer.capturable=true"]).optimizer, nn.Linear(2, 2))

"""Every option of every config group is composed and trained; losses and optimizers must learn the task."""
import json
import math

import pytest

from tests.conftest import CONF, compose_config, options
from trainer.train import train

GROUPS = sorted(path.name for path in CONF.iterdir() if path.is_dir() and path.name != "hydra")
# what a group option needs from the others to make sense (tabular data has no image for a CNN)
COMPANIONS = {("data", "iris"): ["model=mlp"], ("data", "synthetic"): ["data.source.num_samples=300"]}


def test_groups_found_in_conf_include_the_contract():
    assert {"data", "model", "loss", "optimizer", "scheduler"} <= set(GROUPS)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_trains_one_epoch(group, option, tmp_path):
    overrides = [f"{group}={option}", *COMPANIONS.get((group, option), []), "trainer.epochs=2", "trainer.progress=false"]
    metrics = train(compose_config(overrides), tmp_path)
    assert math.isfinite(metrics["test/loss"]) and 0.0 <= metrics["test/acc"] <= 1.0
    assert (tmp_path / "checkpoints" / "best.pt").is_file() and (tmp_path / "checkpoints" / "last.pt").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize("group,option", [("loss", o) for o in options("loss")] +
                         [("optimizer", o) for o in options("optimizer")])
def test_every_loss_and_optimizer_learns_the_default_task(group, option, tmp_path):
    # 5 epochs of the default run (digits, small_cnn); chance is 0.1
    metrics = train(compose_config([f"{group}={option}", "trainer.epochs=5", "trainer.progress=false"]), tmp_path)
    assert metrics["test/acc"] > 0.6, f"{group}={option} reached only {metrics['test/acc']:.3f}"

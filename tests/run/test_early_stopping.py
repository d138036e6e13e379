"""Early stopping: what counts as an improvement, a run on a task that plateaus stops and says so everywhere, and a
run stopped and resumed midway stops exactly where an uninterrupted run stops, schedule included."""
import json
import shutil

import pytest
import torch

from tests.conftest import TINY, learned, run, run_cli
from tests.run.test_checkpoint import StopAfter, assert_same_weights, weights
from trainer.errors import UserError
from trainer.metrics import BEST, Monitor
from trainer.run.checkpoint import Progress
from trainer.run.early_stopping import EarlyStopping
from trainer.run.interrupt import Interrupted

# an easy task: validation accuracy reaches its top within a few of the 30 epochs and stays there
PLATEAU = [*TINY, "trainer.epochs=30", "trainer.early_stopping.patience=2"]
# shuffling, dropout and a schedule planned over the whole run: every state a resume must bring back
EXACT = [*PLATEAU, "model.dropout=0.3", "scheduler=cosine", "data.batch_size=16"]


def history(values, tag="acc/val"):
    return [{"epoch": epoch, tag: value} for epoch, value in enumerate(values, start=1)]


def test_the_count_restarts_on_an_improvement_by_more_than_min_delta_and_a_slow_creep_adds_up():
    stopping = EarlyStopping(BEST, patience=3, min_delta=0.01)
    assert stopping.stale_epochs(history([0.5, 0.505, 0.509, 0.512])) == (0, 4)  # 0.512 beats 0.5 by 0.012
    assert stopping.stale_epochs(history([0.5, 0.505, 0.509])) == (2, 1)
    assert stopping.should_stop(history([0.5, 0.6, 0.6, 0.605, 0.59]))
    assert not EarlyStopping(BEST).should_stop(history([0.5] * 10))  # patience null: never


def test_lower_is_better_for_a_regression_rmse():
    stopping = EarlyStopping(Monitor(metric="rmse", higher_is_better=False), patience=2)
    assert stopping.stale_epochs(history([50.0, 40.0, 41.0, 39.0], tag="rmse/val")) == (0, 4)
    assert stopping.should_stop(history([50.0, 40.0, 41.0, 40.0], tag="rmse/val"))


@pytest.mark.parametrize("setting,says", [("patience=0", "whole number >= 1"), ("patience=1.5", "whole number"),
                                          ("min_delta=-0.1", "a number >= 0")])
def test_a_wrong_setting_is_one_sentence_before_training(tmp_path, setting, says):
    with pytest.raises(UserError, match=f"trainer.early_stopping.{setting} is invalid: .*{says}"):
        run([*TINY, f"trainer.early_stopping.{setting}"], tmp_path)
    assert not (tmp_path / "checkpoints").exists()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """The plateauing run from the command line: (its folder, the console's output)."""
    root = tmp_path_factory.mktemp("plateau")
    result = run_cli(root, *PLATEAU, f"hydra.run.dir={root / 'run'}")
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "run", result.stdout


def test_a_run_on_a_plateau_stops_early_and_its_status_log_and_metrics_say_when(stopped):
    run_dir, console = stopped
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epoch = metrics["stopped_epoch"]
    assert 3 <= epoch < 30 and len(metrics["history"]) == epoch and metrics["epochs"] == 30
    accuracies = [row["acc/val"] for row in metrics["history"]]
    assert max(accuracies[-2:]) <= max(accuracies[:-2])  # its last two epochs did not improve on the best
    assert metrics["best/epoch"] == epoch - 2
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done" and status["stopped_epoch"] == epoch
    line = f"early stopping: best val acc has not improved by more than 0 for 2 epochs since epoch {epoch - 2}"
    assert line in console and line in (run_dir / "train.log").read_text()
    assert f"stopped after epoch {epoch} of 30" in console


def test_a_run_without_patience_trains_every_epoch_and_records_no_stop(tmp_path):
    metrics = run([*TINY, "trainer.epochs=3"], tmp_path)
    assert len(metrics["history"]) == 3 and "stopped_epoch" not in metrics


def test_a_run_stopped_midway_and_resumed_stops_exactly_where_a_straight_run_stops(tmp_path, monkeypatch):
    straight = run(EXACT, tmp_path / "straight")
    epoch = straight["stopped_epoch"]
    assert epoch is not None and epoch < 30
    steps = Progress.from_state(torch.load(tmp_path / "straight" / "checkpoints" / "last.pt",
                                           weights_only=True)).global_step // epoch
    # a signal in the middle of the epoch before the stop: the count so far must come back with the run
    monkeypatch.setattr("trainer.run.train.StopOnSignal", lambda: StopAfter((epoch - 2) * (steps + 1) + steps // 2))
    with pytest.raises(Interrupted):
        run(EXACT, tmp_path / "split")
    monkeypatch.undo()
    stopped_at = Progress.from_state(torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True))
    assert (stopped_at.epoch, stopped_at.step) == (epoch - 2, steps // 2)
    resumed = run([*EXACT, f"ckpt_path={tmp_path}/split/checkpoints/last.pt"], tmp_path / "unused")
    assert resumed["stopped_epoch"] == epoch and learned(resumed["history"]) == learned(straight["history"])
    for name in ("last.pt", "best.pt"):
        assert_same_weights(weights(tmp_path / "straight" / "checkpoints" / name),
                            weights(tmp_path / "split" / "checkpoints" / name))
    last = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    assert last["scheduler"] == torch.load(tmp_path / "straight" / "checkpoints" / "last.pt",
                                           weights_only=True)["scheduler"]  # the cosine planned over 30 epochs
    assert last["scheduler"]["T_max"] == 30 and last["scheduler"]["last_epoch"] == epoch


def test_resuming_a_run_that_stopped_early_trains_no_further(stopped, tmp_path):
    run_dir = shutil.copytree(stopped[0], tmp_path / "run")  # the resume continues in the run's own folder
    epoch = json.loads((run_dir / "metrics.json").read_text())["stopped_epoch"]
    resumed = run([*PLATEAU, f"ckpt_path={run_dir}/checkpoints/last.pt"], tmp_path / "unused")
    assert resumed["stopped_epoch"] == epoch and len(resumed["history"]) == epoch

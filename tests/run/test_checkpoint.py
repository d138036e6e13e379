"""Checkpoints and resume: what a checkpoint holds, safe and atomic files (also on a full disk), exact resume at an
epoch boundary and mid-epoch, checkpoints of the previous format, and the config changes a resume refuses."""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, learned, run, run_cli
from trainer.errors import UserError
from trainer.run import checkpoint
from trainer.run.checkpoint import Progress
from trainer.run.interrupt import Interrupted

# shuffling is always on for training; dropout makes the torch RNG state matter too
EXACT = ["model=mlp", "model.dropout=0.3", "model.hidden=[32]", "trainer.progress=false", "trainer.device=cpu",
         "data.batch_size=128"]
FORMAT1 = Path(__file__).parents[1] / "assets" / "format1_iris_mlp_epoch2.pt"  # last.pt of a run before format 2
FORMAT1_RUN = ["data=iris", "model=mlp", "model.hidden=[8]", "trainer.progress=false", "trainer.device=cpu"]


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_checkpoint_holds_everything_to_continue_each_value_once(tmp_path):
    run([*EXACT, "trainer.epochs=1"], tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert set(state) == {"format", "model", "optimizer", "scheduler", "scaler", "progress", "rng", "config",
                          "classes", "versions"}
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    progress = Progress.from_state(state)
    assert (progress.epoch, progress.step, progress.global_step) == (1, 0, 10)  # 1257 training images / 128
    assert progress.best_epoch == 1 and progress.best_value == progress.history[0]["acc/val"]
    assert type(state["config"]) is dict and state["config"]["model"]["hidden"] == [32]
    assert state["versions"]["torch"] == str(torch.__version__)


def test_best_and_last_are_written_once_and_share_the_file_until_last_moves_on(tmp_path):
    checkpoint.save({"epoch": 1}, tmp_path / "last.pt", tmp_path / "best.pt")
    assert os.path.samefile(tmp_path / "last.pt", tmp_path / "best.pt")
    checkpoint.save({"epoch": 2}, tmp_path / "last.pt")
    assert checkpoint.load(tmp_path / "best.pt", required=("epoch",))["epoch"] == 1
    assert checkpoint.load(tmp_path / "last.pt", required=("epoch",))["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_resuming_at_an_epoch_boundary_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    run([*EXACT, "trainer.epochs=4"], straight)
    run([*EXACT, "trainer.epochs=2"], split)
    resumed = run([*EXACT, "trainer.epochs=4", f"ckpt_path={split}/checkpoints/last.pt"], tmp_path / "unused")
    assert_same_weights(weights(straight / "checkpoints" / "last.pt"), weights(split / "checkpoints" / "last.pt"))
    assert learned(resumed["history"]) == learned(json.loads((straight / "metrics.json").read_text())["history"])
    assert not (tmp_path / "unused").exists()  # the resumed run continued in its own folder


class StopAfter:
    """Stands in for a signal: asks the loop to stop after `steps` steps."""

    def __init__(self, steps):
        self.steps, self.signum = steps, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def requested(self):
        self.steps -= 1
        if self.steps <= 0:
            self.signum = signal.SIGTERM
        return self.signum is not None


def test_a_stop_mid_epoch_saves_the_step_and_resuming_ends_bit_identical(tmp_path, monkeypatch):
    straight, split = tmp_path / "straight", tmp_path / "split"
    exact = [*EXACT, "scheduler=onecycle"]  # a rate that moves every step: the resumed epoch keeps its own lr
    run([*exact, "trainer.epochs=3"], straight)
    # 10 steps of epoch 1, the check after it, then 3 steps of epoch 2
    monkeypatch.setattr("trainer.run.train.StopOnSignal", lambda: StopAfter(14))
    with pytest.raises(Interrupted) as stopped:
        run([*exact, "trainer.epochs=3"], split)
    assert stopped.value.exit_code == 143
    progress = Progress.from_state(torch.load(split / "checkpoints" / "last.pt", weights_only=True))
    assert (progress.epoch, progress.step, progress.global_step) == (1, 3, 13)
    monkeypatch.undo()
    resumed = run([*exact, "trainer.epochs=3", f"ckpt_path={split}/checkpoints/last.pt"], tmp_path)
    assert_same_weights(weights(straight / "checkpoints" / "last.pt"), weights(split / "checkpoints" / "last.pt"))
    # the epoch's loss sum is regrouped around the stop, so it may differ in the last bits; the weights may not
    history = json.loads((straight / "metrics.json").read_text())["history"]
    assert [h["loss/train"] for h in resumed["history"]] == pytest.approx([h["loss/train"] for h in history])
    assert [h["lr"] for h in resumed["history"]] == [h["lr"] for h in history]  # the rate epoch 2 began at


def test_a_checkpoint_of_the_previous_format_resumes_and_evaluates(tmp_path):
    state = torch.load(FORMAT1, weights_only=True)
    assert "format" not in state and state["epoch"] == 2  # written by the code before this format
    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    (old / ".hydra").mkdir()
    shutil.copy(FORMAT1, old / "checkpoints" / "last.pt")
    shutil.copy(FORMAT1, old / "checkpoints" / "best.pt")
    progress = Progress.from_state(state)
    assert (progress.epoch, progress.global_step, progress.best_epoch) == (2, 12, 1)
    resumed = run([*FORMAT1_RUN, "trainer.epochs=3", f"ckpt_path={old}/checkpoints/last.pt"], tmp_path / "new")
    straight = run([*FORMAT1_RUN, "trainer.epochs=3", "data.split=random"], tmp_path / "straight")  # as it was split
    # the old run continued as today's code runs it: its first epochs hold only what that code recorded, and today's
    # code sums iris' training statistics in float64 (the old code in float32), so the inputs differ in their last bits
    for old_row, new_row in zip(resumed["history"], straight["history"]):
        old_row = learned([old_row])[0]  # today's code timed the epochs it trained
        assert old_row == pytest.approx({key: new_row[key] for key in old_row}, rel=1e-4)
    assert resumed["history"][-1].keys() == straight["history"][-1].keys()
    evaluated = run(["mode=eval", f"ckpt_path={FORMAT1}", "trainer.progress=false"], tmp_path / "eval")
    assert evaluated["epoch"] == 2 and 0 <= evaluated["test/acc"] <= 1


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match=r"ckpt_path=.*evil.pt holds Python objects besides tensors .*never unpickles"):
        run(["mode=eval", f"ckpt_path={tmp_path / 'evil.pt'}"], tmp_path / "eval")
    assert not marker.exists()


def test_a_file_that_is_no_run_checkpoint_is_one_sentence_naming_what_it_lacks(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "state_dict.pt")
    with pytest.raises(UserError, match=r"state_dict.pt is not a checkpoint of a losslab run \(it lacks model, "):
        run(["mode=eval", f"ckpt_path={tmp_path / 'state_dict.pt'}"], tmp_path / "eval")


def test_a_truncated_checkpoint_is_one_sentence_naming_the_file(tmp_path):
    run([*EXACT, "trainer.epochs=1"], tmp_path / "run")
    data = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"^ckpt_path=.*half.pt is not a PyTorch file that can be read: it is empty, truncated"):
        run([*EXACT, f"ckpt_path={tmp_path / 'half.pt'}"], tmp_path / "again")


def test_a_write_killed_midway_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"epoch": 1}, path)

    def dies_midway(state, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"epoch": 2}, path)
    assert checkpoint.load(path, required=("epoch",))["epoch"] == 1
    assert list(tmp_path.iterdir()) == [path]


def test_a_full_disk_while_a_checkpoint_is_written_is_one_sentence_and_keeps_the_earlier_last_pt(tmp_path):
    run([*EXACT, "trainer.epochs=1"], tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    before = last.read_bytes()
    limit = len(before) // 2  # `ulimit -f`: no file may grow past half a checkpoint; the logs stay far below it
    resume = [*EXACT, "trainer.epochs=2", f"ckpt_path={last}"]
    full = subprocess.run([sys.executable, "-m", "trainer", *resume], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert full.returncode == 2, full.stderr[-2000:]
    assert full.stderr.splitlines() == [
        f"error: {last} cannot be written (File too large; see `df -h` and `ulimit -f`): {last} keeps the earlier "
        f"checkpoint, so make room and continue with ckpt_path={last}"]
    assert last.read_bytes() == before and sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]
    assert json.loads((last.parents[1] / "status.json").read_text())["status"] == "failed"
    again = run_cli(tmp_path, *resume)  # what the sentence says, with room on the disk
    assert again.returncode == 0, again.stderr[-2000:]
    assert Progress.from_state(checkpoint.load(last)).epoch == 2


@pytest.mark.parametrize("change,says", [
    ("model.hidden=[64]", r"was trained with model.hidden=\[32\], not \[64\]"),
    ("data.num_classes=12", r"was trained with data.num_classes=10, not 12"),
    ("model=small_cnn", r"was trained on model=mlp, not model=small_cnn"),
])
def test_resuming_with_another_architecture_or_class_count_is_refused(tmp_path, change, says):
    run([*EXACT, "trainer.epochs=1"], tmp_path)
    # another model option takes its own settings, not the MLP's (model.hidden=[32] is no width for small_cnn)
    kept = [o for o in EXACT if not (change.startswith("model=") and o.startswith("model."))]
    with pytest.raises(UserError, match=says):
        run([*kept, change, "trainer.epochs=2", f"ckpt_path={tmp_path}/checkpoints/last.pt"], tmp_path / "other")


def test_differences_name_every_changed_key_dotted():
    old = {"model": {"hidden": [32], "dropout": 0.3}, "seed": 0}
    new = {"model": {"hidden": [64], "dropout": 0.3}, "seed": 1}
    assert checkpoint.differences(old, new) == [("model.hidden", [32], [64]), ("seed", 0, 1)]


def test_resuming_on_another_dataset_names_the_dataset_before_its_settings(tmp_path):
    # iris and digits differ in data.batch_size, data.shape, ... too: the dataset is what the user got wrong
    shutil.copytree(FORMAT1.parent, tmp_path / "assets", ignore=lambda folder, names: [
        n for n in names if n != FORMAT1.name])
    with pytest.raises(UserError, match=r"^ckpt_path=\S+ was trained on data=iris, not data=digits: resume with the "
                                        r"run's own overrides"):
        run([*FORMAT1_RUN[1:], "data=digits", "trainer.epochs=3", f"ckpt_path={tmp_path / 'assets' / FORMAT1.name}"],
            tmp_path / "new")
    assert not (tmp_path / "new" / "checkpoints").exists()


def test_the_first_difference_is_a_group_option_then_a_target_then_the_first_key():
    digits = {"data": {"batch_size": 64, "source": {"_target_": "trainer.data.digits"}}}
    iris = {"data": {"batch_size": 16, "source": {"_target_": "trainer.data.iris"}}}
    crafted = {"data": {"batch_size": 16, "source": {"_target_": "my.own.source"}}}
    assert checkpoint.first_difference(checkpoint.differences(iris, digits), iris, digits) == (
        "on data=iris, not data=digits")
    assert checkpoint.first_difference(checkpoint.differences(crafted, digits), crafted, digits) == (
        "with data.source._target_=my.own.source, not trainer.data.digits")


@pytest.mark.parametrize("config", ["hello", {}, {"data": {}, "model": "x"}])
def test_a_checkpoint_whose_config_is_no_runs_config_is_one_sentence(tmp_path, config):
    torch.save({name: {} for name in checkpoint.RUN_KEYS} | {"config": config}, tmp_path / "odd.pt")
    for mode in ("mode=train", "mode=eval"):
        with pytest.raises(UserError, match=r"odd.pt is not a checkpoint of a losslab run \(its config lacks "):
            run([mode, f"ckpt_path={tmp_path / 'odd.pt'}", "trainer.progress=false"], tmp_path / mode)

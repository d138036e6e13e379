"""Never lose a run: complete checkpoints, exact resume, clean stops on signals, refusal of unsafe input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_config
from trainer import checkpoint
from trainer.data import Splits
from trainer.errors import UserError
from trainer.interrupt import Interrupted
from trainer.train import train

REPO = Path(__file__).resolve().parents[1]
# shuffling is always on for training; dropout makes the torch RNG state matter too
EXACT = ["model=mlp", "model.dropout=0.3", "model.hidden=[32]", "trainer.progress=false", "trainer.device=cpu",
         "data.batch_size=128"]


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_checkpoint_holds_everything_to_continue_as_plain_containers(tmp_path):
    train(compose_config([*EXACT, "trainer.epochs=1"]), tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "global_step", "best", "rng", "config", "versions"} <= set(state)
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert state["epoch"] == 1 and state["global_step"] == 10  # 1257 training images / 128
    assert type(state["config"]) is dict and state["config"]["model"]["hidden"] == [32]
    assert state["versions"]["torch"] == str(torch.__version__)


def test_resuming_at_an_epoch_boundary_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(compose_config([*EXACT, "trainer.epochs=4"]), straight)
    train(compose_config([*EXACT, "trainer.epochs=2"]), split)
    resumed = train(compose_config([*EXACT, "trainer.epochs=4", f"ckpt_path={split}/checkpoints/last.pt"]),
                    tmp_path / "unused")
    assert_same_weights(weights(straight / "checkpoints" / "last.pt"), weights(split / "checkpoints" / "last.pt"))
    assert resumed["history"] == json.loads((straight / "metrics.json").read_text())["history"]
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
    train(compose_config([*EXACT, "trainer.epochs=3"]), straight)
    # 10 steps of epoch 1, the check after it, then 3 steps of epoch 2
    monkeypatch.setattr("trainer.train.StopOnSignal", lambda: StopAfter(14))
    with pytest.raises(Interrupted) as stopped:
        train(compose_config([*EXACT, "trainer.epochs=3"]), split)
    assert stopped.value.exit_code == 143
    state = torch.load(split / "checkpoints" / "last.pt", weights_only=True)
    assert (state["progress"]["epoch"], state["progress"]["step"], state["global_step"]) == (1, 3, 13)
    monkeypatch.undo()
    resumed = train(compose_config([*EXACT, "trainer.epochs=3", f"ckpt_path={split}/checkpoints/last.pt"]), tmp_path)
    assert_same_weights(weights(straight / "checkpoints" / "last.pt"), weights(split / "checkpoints" / "last.pt"))
    # the epoch's loss sum is regrouped around the stop, so it may differ in the last bits; the weights may not
    assert [h["loss/train"] for h in resumed["history"]] == pytest.approx([
        h["loss/train"] for h in torch.load(straight / "checkpoints" / "last.pt", weights_only=True)["progress"]["history"]])


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_real_signal_finishes_the_step_saves_last_and_exits_128_plus_signal(tmp_path, signum, code):
    run = tmp_path / "run"
    args = [*EXACT, "data=synthetic", "data.source.num_samples=4000", "data.batch_size=8", "trainer.epochs=30",
            f"hydra.run.dir={run}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "trainer", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert 1 <= state["progress"]["epoch"] < 30
    resumed = train(compose_config([*args[:-1], "trainer.epochs=" + str(state["progress"]["epoch"] + 1),
                                    f"ckpt_path={run}/checkpoints/last.pt"]), tmp_path)
    assert len(resumed["history"]) == state["progress"]["epoch"] + 1


def test_a_diverging_loss_stops_naming_epoch_step_and_lr_and_keeps_the_good_checkpoint(tmp_path):
    # epoch 1 trains with lr 0.01, then the step schedule multiplies it by 1e30
    diverge = ["trainer.progress=false", "optimizer=sgd", "scheduler=step", "scheduler.build.step_size=1",
               "scheduler.build.gamma=1e30", "trainer.epochs=3", "trainer.log_every_n_steps=1"]
    good = None
    with pytest.raises(UserError, match=r"became nan in epoch 2 by step \d+ of 20 \(learning rate 1e\+28\): "
                                        r"lower optimizer.lr .* keeps epoch 1"):
        train(compose_config(diverge), tmp_path)
    good = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert good["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in good["model"].values())


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match=r"ckpt_path=.*evil.pt could not be loaded as a safe checkpoint"):
        train(compose_config(["mode=eval", f"ckpt_path={tmp_path / 'evil.pt'}"]), tmp_path / "eval")
    assert not marker.exists()


def test_a_file_that_is_no_run_checkpoint_is_one_sentence_naming_what_it_lacks(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "state_dict.pt")
    with pytest.raises(UserError, match=r"state_dict.pt is not a checkpoint of a losslab run \(it lacks model, "):
        train(compose_config(["mode=eval", f"ckpt_path={tmp_path / 'state_dict.pt'}"]), tmp_path / "eval")


def test_a_truncated_checkpoint_is_one_sentence_naming_the_file(tmp_path):
    train(compose_config([*EXACT, "trainer.epochs=1"]), tmp_path / "run")
    data = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"^ckpt_path=.*half.pt could not be loaded as a safe checkpoint"):
        train(compose_config([*EXACT, f"ckpt_path={tmp_path / 'half.pt'}"]), tmp_path / "again")


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


@pytest.mark.parametrize("change,says", [
    ("model.hidden=[64]", r"was trained with model.hidden=\[32\], not \[64\]"),
    ("data.num_classes=12", r"was trained with data.num_classes=10, not 12"),
    ("model=small_cnn", r"was trained with model._target_=trainer.models.MLP"),
])
def test_resuming_with_another_architecture_or_class_count_is_refused(tmp_path, change, says):
    train(compose_config([*EXACT, "trainer.epochs=1"]), tmp_path)
    with pytest.raises(UserError, match=says):
        train(compose_config([*EXACT, change, "trainer.epochs=2", f"ckpt_path={tmp_path}/checkpoints/last.pt"]),
              tmp_path / "other")


def test_a_run_dir_holding_checkpoints_is_not_overwritten_without_resuming(tmp_path):
    train(compose_config([*EXACT, "trainer.epochs=1"]), tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(UserError, match=r"already holds a run's checkpoints: resume it with ckpt_path="):
        train(compose_config([*EXACT, "trainer.epochs=1"]), tmp_path)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before


class DiesInWorkers(torch.utils.data.Dataset):
    def __init__(self, n):
        self.x, self.targets = torch.randn(n, 4), torch.arange(n) % 3

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        if torch.utils.data.get_worker_info() is not None:
            os._exit(1)  # a worker killed outright (out of memory, a crashing library)
        return self.x[i], self.targets[i]


def dies_in_workers(seed, **_):
    return Splits(train=DiesInWorkers(60), val=DiesInWorkers(12), test=DiesInWorkers(12))


def test_a_crashing_dataloader_worker_is_reported_with_the_num_workers_hint(tmp_path):
    cfg = compose_config(["model=mlp", "data=iris", "trainer.progress=false", "data.num_workers=1",
                          "data.source._target_=tests.test_resume.dies_in_workers"])
    with pytest.raises(UserError, match=r"a DataLoader worker failed .*: run with data.num_workers=0"):
        train(cfg, tmp_path)


def test_a_resumed_run_from_the_cli_writes_status_and_metrics_into_its_own_run_dir(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = lambda *args: subprocess.run([sys.executable, "-m", "trainer", *EXACT, *args], cwd=tmp_path, env=env,
                                       capture_output=True, text=True, timeout=120)
    first = cli("trainer.epochs=1", f"hydra.run.dir={run}")
    assert first.returncode == 0, first.stderr
    resumed = cli("trainer.epochs=2", f"ckpt_path={run}/checkpoints/last.pt", f"hydra.run.dir={tmp_path / 'again'}")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    assert not (tmp_path / "again" / "status.json").exists()
    missing = cli(f"ckpt_path={tmp_path}/nowhere/last.pt", f"hydra.run.dir={tmp_path / 'third'}")
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert json.loads((tmp_path / "third" / "status.json").read_text())["status"] == "failed"

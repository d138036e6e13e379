"""The `train` command as a user runs it: a subprocess, from a directory that is not the repo."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import compose_config
from trainer.errors import UserError
from trainer.train import train

REPO = Path(__file__).resolve().parents[1]
QUICK = ["trainer.epochs=2", "trainer.progress=false"]


def run_cli(cwd, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def scalar_tags(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_train_then_eval_the_best_checkpoint_from_another_directory(tmp_path):
    run_dir, eval_dir = tmp_path / "run", tmp_path / "eval"
    trained = run_cli(tmp_path, *QUICK, "trainer.log_every_n_steps=5", f"hydra.run.dir={run_dir}")
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"test/acc", "test/loss", "best/val_acc", "best/epoch", "epochs"} <= set(metrics)
    assert metrics["epochs"] == 2 and metrics["test/acc"] > 0.5
    assert {"loss/train", "loss/val", "acc/train", "acc/val", "lr", "loss/train_step", "loss/test",
            "acc/test"} <= scalar_tags(run_dir)

    evaluated = run_cli(tmp_path, "mode=eval", f"ckpt_path={run_dir}/checkpoints/best.pt", "trainer.progress=false",
                        f"hydra.run.dir={eval_dir}")
    assert evaluated.returncode == 0, evaluated.stderr
    again = json.loads((eval_dir / "metrics.json").read_text())
    assert again["test/acc"] == pytest.approx(metrics["test/acc"])
    assert again["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)


def test_multirun_runs_one_job_per_loss_in_dirs_named_by_overrides(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", "loss=ce,nll", "trainer.epochs=1", "trainer.progress=false",
                     f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    for loss in ("ce", "nll"):
        assert json.loads((sweep / f"loss={loss},trainer.epochs=1" / "metrics.json").read_text())["test/acc"] > 0.2
    # ce is LogSoftmax + NLL: same seed, same data, same updates
    ce, nll = (json.loads((sweep / f"loss={loss},trainer.epochs=1" / "metrics.json").read_text())
               for loss in ("ce", "nll"))
    assert ce["test/loss"] == pytest.approx(nll["test/loss"], rel=1e-4)


@pytest.mark.parametrize("overrides,says", [
    (["loss=nope"], "Could not find 'loss/nope'"),
    (["optimizer.lr=0"], "optimizer.lr=0"),
    (["data.num_classes=5"], "data.num_classes=10"),
])
def test_bad_input_from_the_cli_exits_nonzero_with_one_sentence_before_training(tmp_path, overrides, says):
    result = run_cli(tmp_path, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("overrides,says", [
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1 is invalid"),
    (["trainer.epochs=0"], "trainer.epochs=0 is invalid"),
    (["data.batch_size=0"], "data.batch_size=0 is invalid"),
    (["mode=eval"], "mode=eval needs a checkpoint: add ckpt_path="),
    (["mode=eval", "ckpt_path=/nowhere/best.pt"], "ckpt_path=/nowhere/best.pt does not exist"),
    (["data.num_classes=5"], "labels from 0 to 9 but the model's head has 5 outputs"),
    (["mode=fit"], "mode=fit is not known"),
    (["+optimizer.momentum_typo=1"], "optimizer torch.optim.Adam rejected its config"),
    (["model=mlp", "model.activation=gelu"], "model.activation=gelu is not known"),
    (["data=synthetic", "data.channels=0"], "the model cannot take samples of data.shape=[0, 32, 32]"),
])
def test_bad_input_is_one_sentence_naming_the_key_and_nothing_is_written(tmp_path, overrides, says):
    with pytest.raises(UserError, match=re.escape(says)):
        train(compose_config(["trainer.progress=false", *overrides]), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_a_non_editable_install_ships_the_config_inside_the_package(tmp_path):
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                                "--target", str(target), str(REPO)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert (target / "trainer" / "conf" / "loss" / "nll.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(target)}
    shown = subprocess.run([sys.executable, "-m", "trainer", "--cfg", "job", "loss=nll"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "_target_: torch.nn.NLLLoss" in shown.stdout
    where = subprocess.run([sys.executable, "-c", "import trainer.config as c; print(c.config_dir())"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(target / "trainer" / "conf")

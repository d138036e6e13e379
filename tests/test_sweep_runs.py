"""Real sweeps as subprocesses (`python -m trainer -m ...`) on tiny data: the summary at the end, a failing job,
unique sweep dirs, the joblib launcher and the Optuna sweeper."""
import csv
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import compose_config, options

ROOT = Path(__file__).resolve().parents[1]
# Tiny synthetic data and an MLP: a job takes about a second after imports.
TINY = ["data=synthetic", "data.source.num_samples=200", "data.channels=1", "data.image_size=8",
        "data.num_classes=4", "model=mlp", "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu"]


def train(cwd, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def sweep_dirs(cwd):
    """The sweep dirs under cwd that have a summary (the Optuna sweeper writes no multirun.yaml)."""
    return sorted(p.parent for p in (Path(cwd) / "outputs" / "multirun").glob("*/*/summary.md"))


def test_a_failing_job_is_recorded_the_other_completes_and_the_sweep_exits_1(tmp_path):
    result = train(tmp_path, "-m", *TINY, "optimizer=sgd", "optimizer.lr=0.1,1e30")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: 1 of 2 jobs failed" in result.stderr
    [sweep] = sweep_dirs(tmp_path)
    statuses = {p.parent.name.split("optimizer.lr=")[1].split(",")[0]: json.loads(p.read_text())
                for p in sweep.glob("*/status.json")}
    assert statuses["0.1"]["status"] == "done" and statuses["0.1"]["wall_time_s"] > 0
    assert statuses["1e+30"]["status"] == "failed"
    assert statuses["1e+30"]["error"].startswith("the training loss became nan in epoch 1 by step")
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(r["rank"], r["status"]) for r in rows] == [("1", "done"), ("2", "failed")]
    assert "optimizer.lr=0.1" in rows[0]["overrides"] and 0 < float(rows[0]["best/val_acc"]) <= 1
    # the table is printed, and written with the picture
    assert "| 1 | optimizer.lr=0.1 | done |" in result.stdout
    assert "| 1 | optimizer.lr=0.1 | done |" in (sweep / "summary.md").read_text()
    assert (sweep / "curves.png").stat().st_size > 10_000


def test_single_run_with_a_diverging_loss_exits_2_with_one_sentence_and_status_json(tmp_path):
    result = train(tmp_path, *TINY, "optimizer=sgd", "optimizer.lr=1e30")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: the training loss became nan in epoch 1 by step ")
    assert "(learning rate 1e+30): lower optimizer.lr or pick another loss; no checkpoint was written" in line
    [status] = (tmp_path / "outputs").glob("*/*/status.json")
    assert json.loads(status.read_text())["status"] == "failed"


def test_joblib_runs_two_jobs_into_a_fresh_sweep_dir_when_this_seconds_one_exists(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    # Stand-ins for a sweep started in the same second: the folders for the next seconds already exist.
    now = datetime.now()
    taken = [tmp_path / "outputs" / "multirun" / f"{t:%Y-%m-%d}" / f"{t:%H-%M-%S}"
             for t in (now + timedelta(seconds=s) for s in range(60))]
    for folder in taken:
        folder.mkdir(parents=True, exist_ok=True)
    result = train(tmp_path, "-m", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "loss=ce,mse")
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(not any(folder.iterdir()) for folder in taken)  # nobody wrote into the other sweep's folder
    [sweep] = sweep_dirs(tmp_path)
    assert sweep.name.endswith("_2") and sweep.parent / sweep.name[:-2] in taken
    # both jobs, each in its own process, agree on the claimed folder
    losses = [o for p in sweep.glob("*/status.json") for o in p.parent.name.split(",") if o.startswith("loss=")]
    assert sorted(losses) == ["loss=ce", "loss=mse"]
    assert sorted(r["status"] for r in csv.DictReader((sweep / "summary.csv").open())) == ["done", "done"]
    assert not (tmp_path / "outputs" / f"{now:%Y-%m-%d}").exists()  # no stray single-run folder


def test_optuna_searches_lr_and_loss_and_maximises_best_val_acc(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    result = train(tmp_path, "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=3", "model=mlp",
                   "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep] = sweep_dirs(tmp_path)
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 3 and all(r["status"] == "done" for r in rows)
    assert all("optimizer.lr=" in r["overrides"] and "loss=" in r["overrides"] for r in rows)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(float(r["best/val_acc"]) for r in rows))
    assert set(best["best_params"]) == {"optimizer.lr", "loss"}


def test_every_hparams_search_option_composes_into_a_maximising_sweeper():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF

    for option in options("hparams_search"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"hparams_search={option}"], return_hydra_config=True)
        assert cfg.hydra.sweeper.direction == "maximize"
        assert set(cfg.hydra.sweeper.params) == {"optimizer.lr", "loss"}


def test_hparams_search_is_off_by_default():
    assert compose_config().get("hparams_search") is None

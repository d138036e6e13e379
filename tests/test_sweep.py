"""Sweeps: the summary built from fabricated job dirs (no training), then real sweeps as subprocesses on tiny data
(a failing job, unique sweep dirs, the joblib and submitit launchers, the Optuna sweeper)."""
import csv
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TINY, compose_config, options, run_cli
from trainer.rundir import write_status
from trainer.sweep import read_jobs, summarize


def make_job(sweep_dir, num, overrides, status="done", best_val=None, test_acc=None, error=None, wall=1.0,
             history=((1.0, 0.5), (0.8, 0.6))):
    """A job dir as a real sweep leaves it: .hydra/overrides.yaml, .hydra/hydra.yaml (job num), status.json
    and, for a finished job, metrics.json. `status=None` is a job that never finished (no status.json)."""
    job_dir = Path(sweep_dir) / ",".join(overrides)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    (job_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if status is not None:
        write_status(job_dir, wall, None if status == "done" else RuntimeError(error))
    if status == "done":
        metrics = {"best/val_acc": best_val, "best/epoch": 2, "test/acc": test_acc, "test/loss": 0.5,
                   "train/loss": 0.4, "epochs": 2,
                   "history": [{"epoch": i + 1, "loss/val": loss, "acc/val": acc}
                               for i, (loss, acc) in enumerate(history)]}
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
    return job_dir


@pytest.fixture
def loss_sweep(tmp_path):
    """loss=ce,nll,bce,mse with trainer.epochs=2 in common: mse failed, bce never finished."""
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["loss=ce", "trainer.epochs=2"], best_val=0.80, test_acc=0.78, wall=3.0)
    make_job(sweep, 1, ["loss=nll", "trainer.epochs=2"], best_val=0.90, test_acc=0.88, wall=2.5)
    make_job(sweep, 2, ["loss=bce", "trainer.epochs=2"], status=None)
    make_job(sweep, 3, ["loss=mse", "trainer.epochs=2"], status="failed",
             error="the training loss became nan in epoch 1: lower optimizer.lr\nTraceback ...")
    return sweep


def test_summary_ranks_jobs_by_best_val_acc_then_jobs_without_one_in_launch_order(loss_sweep):
    text, jobs = summarize(loss_sweep)
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    assert [row.split(" | ")[1] for row in table] == ["loss=nll", "loss=ce", "loss=bce", "loss=mse"]
    assert table[0].split(" | ")[2:] == ["done", "0.9000", "2", "0.8800", "0.5000", "0.4000", "2", "2.5 |"]
    assert "failed: the training loss became nan in epoch 1: lower optimizer.lr |" in table[3]  # first line only
    assert table[2].split(" | ")[2] == "unfinished"
    assert "4 jobs: 2 done, 1 failed, 1 unfinished" in text
    assert "Same in every job: `trainer.epochs=2`" in text
    assert (loss_sweep / "summary.md").read_text() == text


def test_summary_csv_has_one_row_per_job_with_raw_numbers(loss_sweep):
    summarize(loss_sweep)
    rows = list(csv.DictReader((loss_sweep / "summary.csv").open()))
    assert [(r["rank"], r["overrides"], r["status"]) for r in rows] == [
        ("1", "loss=nll trainer.epochs=2", "done"), ("2", "loss=ce trainer.epochs=2", "done"),
        ("3", "loss=bce trainer.epochs=2", "unfinished"), ("4", "loss=mse trainer.epochs=2", "failed")]
    assert float(rows[0]["best/val_acc"]) == 0.9 and float(rows[0]["wall_time_s"]) == 2.5
    assert rows[3]["error"] == "the training loss became nan in epoch 1: lower optimizer.lr"
    assert rows[2]["best/val_acc"] == "" and rows[2]["wall_time_s"] == ""


def test_curves_png_is_drawn_from_the_finished_jobs_histories(loss_sweep):
    summarize(loss_sweep)
    png = (loss_sweep / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_a_sweep_with_no_finished_job_has_a_table_and_no_picture(tmp_path):
    make_job(tmp_path, 0, ["loss=ce"], status="failed", error="boom")
    (tmp_path / "curves.png").write_bytes(b"stale")
    text, jobs = summarize(tmp_path)
    assert [job.status for job in jobs] == ["failed"]
    assert not (tmp_path / "curves.png").exists() and "curves.png" not in text


def test_runs_that_differ_only_by_seed_are_grouped_with_mean_and_std(tmp_path):
    for num, (loss, seed, acc) in enumerate([("ce", 0, 0.80), ("ce", 1, 0.90), ("nll", 0, 0.95), ("nll", 1, 0.97)]):
        make_job(tmp_path, num, [f"loss={loss}", f"seed={seed}"], best_val=acc, test_acc=acc)
    make_job(tmp_path, 4, ["loss=nll", "seed=2"], status="failed", error="boom")
    text, _ = summarize(tmp_path)
    grouped = text.split("## Grouped by seed")[1]
    rows = [line.split(" | ") for line in grouped.splitlines() if line.startswith("| ") and "rank" not in line]
    # nll: mean(0.95, 0.97) = 0.96, sample std = 0.0141; ce: 0.85 ± 0.0707; the failed seed only counts as a run
    assert rows[0][1:5] == ["loss=nll", "2/3", "0 1 2", "0.9600 ± 0.0141"]
    assert rows[1][1:5] == ["loss=ce", "2/2", "0 1", "0.8500 ± 0.0707"]
    groups = {r["overrides"]: r["group"] for r in csv.DictReader((tmp_path / "summary.csv").open())}
    assert groups["loss=ce seed=1"] == "loss=ce"


def test_a_sweep_without_seeds_has_no_seed_table(loss_sweep):
    text, _ = summarize(loss_sweep)
    assert "Grouped by seed" not in text


def test_jobs_are_found_in_nested_dirs_in_launch_order(tmp_path):
    make_job(tmp_path, 1, ["data.root=a/b"], best_val=0.5, test_acc=0.5)  # a "/" in an override nests the folder
    make_job(tmp_path, 0, ["data.root=z"], best_val=0.5, test_acc=0.5)
    assert [job.overrides for job in read_jobs(tmp_path)] == [["data.root=z"], ["data.root=a/b"]]


def summarize_script(sweep_dir):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "summarize.py"), str(sweep_dir)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def test_summarize_script_rewrites_the_summary_of_an_interrupted_sweep(loss_sweep):
    result = summarize_script(loss_sweep)
    assert result.returncode == 0, result.stderr
    assert "| 1 | loss=nll | done |" in result.stdout and "| 3 | loss=bce | unfinished |" in result.stdout
    assert {"summary.md", "summary.csv", "curves.png"} <= {p.name for p in loss_sweep.iterdir()}


def test_summarize_script_says_what_to_pass_when_the_folder_has_no_jobs(tmp_path):
    result = summarize_script(tmp_path)
    assert result.returncode == 2 and "has no job folders" in result.stderr


# --- real sweeps ----------------------------------------------------------------------------------------------


def sweep_dirs(cwd):
    """The sweep dirs under cwd that have a summary (the Optuna sweeper writes no multirun.yaml)."""
    return sorted(p.parent for p in (Path(cwd) / "outputs" / "multirun").glob("*/*/summary.md"))


def test_a_failing_job_is_recorded_the_other_completes_and_the_sweep_exits_1(tmp_path):
    result = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "optimizer=sgd", "optimizer.lr=0.1,1e30")
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
    assert "optimizer.lr=0.1" in rows[0]["overrides"] and float(rows[0]["best/val_acc"]) > 0.5  # chance is 0.25
    # the table is printed, and written with the picture
    assert "| 1 | optimizer.lr=0.1 | done |" in result.stdout
    assert "| 1 | optimizer.lr=0.1 | done |" in (sweep / "summary.md").read_text()
    assert (sweep / "curves.png").stat().st_size > 10_000


def test_joblib_runs_two_jobs_into_a_fresh_sweep_dir_when_this_seconds_one_exists(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    # Stand-ins for a sweep started in the same second: the folders for the next seconds already exist.
    now = datetime.now()
    taken = [tmp_path / "outputs" / "multirun" / f"{t:%Y-%m-%d}" / f"{t:%H-%M-%S}"
             for t in (now + timedelta(seconds=s) for s in range(60))]
    for folder in taken:
        folder.mkdir(parents=True, exist_ok=True)
    result = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                     "loss=ce,mse")
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
    result = run_cli(tmp_path, "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=3", "model=mlp",
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


def test_submitit_local_runs_a_two_job_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_cli(tmp_path, "--multirun", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                     "data=iris", "model=mlp", "trainer.epochs=10", "trainer.progress=false", "trainer.device=cpu",
                     "seed=0,1", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted((tmp_path / "outputs" / "multirun").glob("*/*/*/metrics.json"))  # one dir per job, named
    assert [re.search(r"seed=(\d)", p.parent.name).group(1) for p in jobs] == ["0", "1"]  # by its overrides
    assert all(json.loads(p.read_text())["test/acc"] > 0.6 for p in jobs)  # chance is 1/3
    assert list((tmp_path / "outputs" / "multirun").glob("*/*/.submitit"))  # submitit's own job logs

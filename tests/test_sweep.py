"""The sweep summary, built from fabricated job dirs (no training), status.json, and unique output dirs."""
import csv
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import CONF
from trainer.sweep import claim_dir, read_jobs, summarize, write_status


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


def test_status_json_records_the_errors_first_line_and_wall_time(tmp_path):
    write_status(tmp_path, 12.34567, ValueError("first line\nsecond line"))
    assert json.loads((tmp_path / "status.json").read_text()) == {
        "status": "failed", "error": "first line", "error_type": "ValueError", "wall_time_s": 12.346}
    write_status(tmp_path, 1.0)
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "done"


def test_claim_dir_gives_a_second_claim_of_the_same_folder_a_suffix(tmp_path):
    base = str(tmp_path / "multirun" / "2024-01-01" / "12-00-00")
    assert [claim_dir(base) for _ in range(3)] == [base, base + "_2", base + "_3"]


def test_processes_claiming_the_same_folder_at_once_all_get_their_own(tmp_path):
    base = str(tmp_path / "12-00-00")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        claimed = pool.map(claim_dir, [base] * 8)
    assert len(set(claimed)) == 8 and set(claimed) == {base} | {f"{base}_{i}" for i in range(2, 9)}


def test_run_and_sweep_dirs_are_claimed_through_unique_dir():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        hydra = compose(config_name="config", return_hydra_config=True).hydra
    assert OmegaConf.to_container(hydra.run)["dir"] == "${unique_dir:outputs/${oc.env:LOSSLAB_RUN_TIME,${now:%Y-%m-%d}/${now:%H-%M-%S}}}"
    assert OmegaConf.to_container(hydra.sweep)["dir"] == (
        "${unique_dir:outputs/multirun/${oc.env:LOSSLAB_RUN_TIME,${now:%Y-%m-%d}/${now:%H-%M-%S}}}")



def summarize_script(sweep_dir):
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, str(root / "scripts" / "summarize.py"), str(sweep_dir)],
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=120)


def test_summarize_script_rewrites_the_summary_of_an_interrupted_sweep(loss_sweep):
    result = summarize_script(loss_sweep)
    assert result.returncode == 0, result.stderr
    assert "| 1 | loss=nll | done |" in result.stdout and "| 3 | loss=bce | unfinished |" in result.stdout
    assert {"summary.md", "summary.csv", "curves.png"} <= {p.name for p in loss_sweep.iterdir()}


def test_summarize_script_says_what_to_pass_when_the_folder_has_no_jobs(tmp_path):
    result = summarize_script(tmp_path)
    assert result.returncode == 2 and "has no job folders" in result.stderr

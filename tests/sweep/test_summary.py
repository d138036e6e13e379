"""Sweeps: the summary built from fabricated job dirs (no training), then real sweeps as subprocesses on tiny data
(a failing job, unique sweep dirs, the joblib and submitit launchers, the Optuna sweeper)."""
import csv
import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TINY, compose_config, options, run_cli
from trainer.errors import UserError
from trainer.metrics import (ACC, BEST, BEST_EPOCH, CALIBRATION, CHOSEN_LR, ECE, EPOCHS, HISTORY, LOSS, MAX_GRAD_NORM,
                             NLL, TEST, TRAIN, VAL, result_key, tag)
from trainer.run.rundir import write_status
from trainer.sweep import read_jobs, summarize
from trainer.sweep.pictures import group_curves, merge_calibration


def make_job(sweep_dir, num, overrides, status="done", best_val=None, test_acc=None, error=None, wall=1.0,
             history=((1.0, 0.5), (0.8, 0.6)), **metrics):
    """A job dir as a real sweep leaves it: .hydra/overrides.yaml, .hydra/hydra.yaml (job num), status.json
    and, for a finished job, metrics.json. `status=None` is a job that never finished (no status.json). `history`
    holds (val loss, val acc) per epoch; `metrics` adds metrics.json keys (the newer metrics, or a regression's
    best instead of best_val), by name."""
    job_dir = Path(sweep_dir) / ",".join(overrides)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    (job_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if status is not None:
        write_status(job_dir, wall, None if status == "done" else RuntimeError(error))
    if status == "done":
        rows = [{"epoch": i + 1, tag(LOSS, VAL): loss, tag(ACC, VAL): acc} for i, (loss, acc) in enumerate(history)]
        values = {**({} if best_val is None else {BEST.best_key: best_val}), BEST_EPOCH: 2,
                  result_key(TEST, ACC): test_acc, result_key(TEST, LOSS): 0.5, result_key(TRAIN, LOSS): 0.4, EPOCHS: 2,
                  HISTORY: rows, **metrics}
        (job_dir / "metrics.json").write_text(json.dumps(values))
    return job_dir


def calibration(confidence, accuracy, count):
    return {"bins": len(count), "confidence": confidence, "accuracy": accuracy, "count": count}


def table_rows(text, after=None):
    """The cells of the markdown table rows (header and rule left out), of the first table after `after`."""
    lines = text.split(after, 1)[1].splitlines() if after else text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| rank"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line.strip("| ").split(" | ")])
    return rows


def header(text, after=None):
    lines = text.split(after, 1)[1].splitlines() if after else text.splitlines()
    return next(line for line in lines if line.startswith("| rank")).strip("| ").split(" | ")


@pytest.fixture
def loss_sweep(tmp_path):
    """loss=ce,nll,bce,mse with trainer.epochs=2 in common: mse failed, bce never finished."""
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["loss=ce", "trainer.epochs=2"], best_val=0.80, test_acc=0.78, wall=3.0)
    make_job(sweep, 1, ["loss=nll", "trainer.epochs=2"], best_val=0.90, test_acc=0.88, wall=2.5)
    make_job(sweep, 2, ["loss=bce", "trainer.epochs=2"], status=None)
    make_job(sweep, 3, ["loss=mse", "trainer.epochs=2"], status="failed",
             error="the training loss became nan in epoch 1: lower optimizer.lr\n\nTraceback ...")
    return sweep


def test_summary_ranks_jobs_by_best_val_acc_then_jobs_without_one_in_launch_order(loss_sweep):
    text, jobs = summarize(loss_sweep)
    table = table_rows(text)
    assert [row[1] for row in table] == ["loss=nll", "loss=ce", "loss=bce", "loss=mse"]
    # no lr column: no job chose its rate (optimizer.lr=auto); no NLL, ECE or regression columns: no job has them
    assert header(text) == ["rank", "overrides", "status", "best val acc", "best epoch", "test acc", "test loss",
                            "train loss", "max grad norm", "epochs to target", "epochs", "wall time (s)"]
    # an older job without the gradient norm shows "–"; it reached 0.95 x 0.6 (the best val acc) in epoch 2
    assert table[0][2:] == ["done", "0.9000", "2", "0.8800", "0.5000", "0.4000", "–", "2", "2", "2.5"]
    assert table[3][2] == "failed: the training loss became nan in epoch 1: lower optimizer.lr"  # first line only
    assert table[2][2] == "unfinished" and table[2][3:] == ["–"] * 9
    assert "4 jobs: 2 done, 1 failed, 1 unfinished" in text and "Wall time 6.5 s in all (3 jobs)." in text
    assert "Same in every job: `trainer.epochs=2`" in text
    assert (loss_sweep / "summary.md").read_text() == text


def test_the_new_metrics_are_columns_and_the_lr_column_appears_when_a_job_chose_its_rate(tmp_path):
    make_job(tmp_path, 0, ["loss=ce"], best_val=0.9, test_acc=0.9, **{
        CHOSEN_LR: 0.00316, result_key(TEST, NLL): 0.31, result_key(TEST, ECE): 0.042, MAX_GRAD_NORM: 12.5})
    make_job(tmp_path, 1, ["loss=mse"], best_val=0.8, test_acc=0.8)  # an older run: none of them
    text, _ = summarize(tmp_path)
    cells = [dict(zip(header(text), row)) for row in table_rows(text)]
    assert [(c["lr"], c["test NLL"], c["test ECE"], c["max grad norm"]) for c in cells] == [
        ("0.00316", "0.3100", "0.0420", "12.5"), ("–", "–", "–", "–")]
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert float(rows[0][CHOSEN_LR]) == 0.00316 and float(rows[0][MAX_GRAD_NORM]) == 12.5
    assert rows[1][result_key(TEST, NLL)] == ""


def test_a_job_early_stopping_ended_says_at_which_epoch(tmp_path):
    make_job(tmp_path, 0, ["loss=ce"], best_val=0.9, test_acc=0.9, stopped_epoch=7)
    make_job(tmp_path, 1, ["loss=mse"], best_val=0.8, test_acc=0.8, stopped_epoch=None)  # trained every epoch
    text, _ = summarize(tmp_path)
    assert [dict(zip(header(text), row))["stopped early at"] for row in table_rows(text)] == ["7", "–"]
    assert [row["stopped_epoch"] for row in csv.DictReader((tmp_path / "summary.csv").open())] == ["7", ""]


def test_epochs_to_target_is_the_first_epoch_reaching_the_fraction_of_the_sweeps_best_val_acc(tmp_path):
    make_job(tmp_path, 0, ["loss=ce"], best_val=1.0, test_acc=1.0, history=[(1, 0.5), (1, 0.96), (1, 1.0)])
    make_job(tmp_path, 1, ["loss=mse"], best_val=0.94, test_acc=0.9, history=[(1, 0.5), (1, 0.94), (1, 0.9)])
    by_target = {}
    for target in (None, 0.9, 0.5):
        text, _ = summarize(tmp_path, target=target)
        by_target[target] = [dict(zip(header(text), row))["epochs to target"] for row in table_rows(text)]
    # default sweep.target=0.95 of the best, 1.0: ce reached 0.96 in epoch 2, mse's best 0.94 never got there
    assert by_target == {None: ["2", "never"], 0.9: ["2", "2"], 0.5: ["1", "1"]}
    assert "reached 0.5000 (`sweep.target=0.5` × 1.0000, the best in the sweep)" in text
    assert [r["epochs_to_target"] for r in csv.DictReader((tmp_path / "summary.csv").open())] == ["1", "1"]


def test_summarize_reads_sweep_target_from_the_config_the_jobs_ran_with(tmp_path):
    for num, (loss, history) in enumerate([("ce", [(1, 0.5), (1, 1.0)]), ("mse", [(1, 0.8), (1, 0.9)])]):
        job = make_job(tmp_path, num, [f"loss={loss}"], best_val=history[-1][1], test_acc=0.9, history=history)
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "sweep": {"target": 0.8}}))
    text, _ = summarize(tmp_path)
    assert [row[-3] for row in table_rows(text)] == ["2", "1"]  # 0.8 x 1.0: ce in epoch 2, mse in epoch 1


def test_a_sweep_target_outside_0_to_1_is_one_sentence_naming_the_key(tmp_path):
    make_job(tmp_path, 0, ["loss=ce"], best_val=0.9, test_acc=0.9)
    with pytest.raises(UserError, match=r"^sweep.target=1.5 is invalid: .* a number in \(0, 1\], e.g. sweep.target=0.95$"):
        summarize(tmp_path, target=1.5)


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
    text, _ = summarize(loss_sweep)
    png = (loss_sweep / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "![training and validation curves](curves.png)" in text


def test_a_sweep_with_no_finished_job_has_a_table_and_no_picture(tmp_path):
    make_job(tmp_path, 0, ["loss=ce"], status="failed", error="boom")
    (tmp_path / "curves.png").write_bytes(b"stale")
    (tmp_path / "reliability_overlay.png").write_bytes(b"stale")
    text, jobs = summarize(tmp_path)
    assert [job.status for job in jobs] == ["failed"]
    assert not (tmp_path / "curves.png").exists() and "curves.png" not in text
    assert not (tmp_path / "reliability_overlay.png").exists() and "reliability" not in text


@pytest.fixture
def seed_sweep(tmp_path):
    """loss=ce,nll,mse x seed=0,1,2 (and a failed nll seed 3): nll on top, ce close behind, mse far below."""
    results = {"nll": (0.95, 0.97, 0.96), "ce": (0.80, 0.90, 0.85), "mse": (0.50, 0.52, 0.51)}
    num = 0
    for loss, accuracies in results.items():
        for seed, acc in enumerate(accuracies):
            make_job(tmp_path, num, [f"loss={loss}", f"seed={seed}"], best_val=acc, test_acc=acc,
                     history=[(1.0, acc - 0.1), (0.5, acc)])
            num += 1
    make_job(tmp_path, num, ["loss=nll", "seed=3"], status="failed", error="boom")
    return tmp_path


def test_seed_groups_get_the_mean_and_the_range_of_their_seeds_below_five(seed_sweep):
    text, _ = summarize(seed_sweep)
    rows = {row[1]: dict(zip(header(text, "## Seed groups"), row)) for row in table_rows(text, "## Seed groups")}
    assert rows["loss=nll"]["best val acc"] == "0.9600 [0.9500, 0.9700]"  # the mean, the lowest and highest seed
    assert rows["loss=ce"]["best val acc"] == "0.8500 [0.8000, 0.9000]"
    assert rows["loss=nll"]["interval"] == "range of 3"
    assert (rows["loss=nll"]["runs done"], rows["loss=nll"]["seeds"]) == ("3/4", "0 1 2 3")  # the failed seed
    assert list(rows) == ["loss=nll", "loss=ce", "loss=mse"]
    assert "the range of the seeds' values" in text and "Holm" in text
    assert text.index("## Seed groups") < text.index("## Every job")


def test_groups_are_compared_with_the_best_by_seed_with_the_difference_the_wins_and_holms_p(seed_sweep):
    from scipy import stats

    text, _ = summarize(seed_sweep)
    rows = {row[1]: dict(zip(header(text, "## Seed groups"), row)) for row in table_rows(text, "## Seed groups")}
    nll, ce, mse = (0.95, 0.97, 0.96), (0.80, 0.90, 0.85), (0.50, 0.52, 0.51)  # seeds 0, 1, 2 (nll's 3 failed)
    raw = [stats.ttest_rel(ce, nll).pvalue, stats.ttest_rel(mse, nll).pvalue]
    holm = [max(raw[1] * 2, raw[0]), raw[1] * 2]  # mse has the smaller p: times 2; ce's then times 1, kept monotone
    # nll won in every seed: the paired test separates ce (p = 0.041) where Welch's, blind to the seeds, did not
    assert rows["loss=ce"]["vs best"] == f"worse (p={holm[0]:.2g})" == "worse (p=0.041)"
    assert stats.ttest_ind(ce, nll, equal_var=False).pvalue == pytest.approx(0.0574, abs=1e-4)
    assert rows["loss=mse"]["vs best"] == f"worse (p={holm[1]:.2g})"
    assert (rows["loss=ce"]["test"], rows["loss=ce"]["best won"]) == ("paired t, 3 seeds", "3/3")
    # per seed ce - nll: -0.15, -0.07, -0.11
    assert rows["loss=ce"]["difference to best"] == "-0.1100 [-0.1500, -0.0700]"
    assert rows["loss=nll"]["vs best"] == "best" and rows["loss=nll"]["best won"] == "–"


def test_summary_groups_csv_holds_the_means_interval_bounds_n_and_the_comparison(seed_sweep):
    from scipy import stats

    summarize(seed_sweep)
    rows = {r["group"]: r for r in csv.DictReader((seed_sweep / "summary_groups.csv").open())}
    nll, ce = rows["loss=nll"], rows["loss=ce"]
    key = BEST.best_key
    assert [float(nll[f"{key} {part}"]) for part in ("mean", "low", "high")] == pytest.approx([0.96, 0.95, 0.97])
    assert (nll[f"{key} n"], nll["runs"], nll["runs_done"], nll["vs_best"], nll["p_vs_best"], nll["test"]) == (
        "3", "4", "3", "best", "", "")
    assert float(ce["p_vs_best"]) == pytest.approx(stats.ttest_rel((0.80, 0.90, 0.85), (0.95, 0.97, 0.96)).pvalue)
    assert float(ce["p_holm"]) == float(ce["p_vs_best"]) and ce["vs_best"] == "worse" and ce["test"] == "paired t"
    assert [float(ce[f"difference {part}"]) for part in ("mean", "low", "high")] == pytest.approx([-0.11, -0.15, -0.07])
    assert (ce["pairs"], ce["best_won"], ce["ratio"]) == ("3", "3", "False")
    assert rows["loss=mse"]["vs_best"] == "worse" and float(rows["loss=mse"]["p_holm"]) < 0.05


def test_identical_seeds_are_tied_and_a_single_seed_is_not_tested(tmp_path):
    for num, (loss, seed, acc) in enumerate([("ce", 0, 0.9), ("ce", 1, 0.8), ("nll", 0, 0.9), ("nll", 1, 0.8),
                                             ("mse", 0, 0.7)]):
        make_job(tmp_path, num, [f"loss={loss}", f"seed={seed}"], best_val=acc, test_acc=acc)
    text, _ = summarize(tmp_path)
    rows = [dict(zip(header(text, "## Seed groups"), row)) for row in table_rows(text, "## Seed groups")]
    # ce and nll compute one function, so their seeds agree exactly: no difference to find, p = 1
    assert [(row["overrides (all seeds)"], row["vs best"]) for row in rows] == [
        ("loss=ce", "best"), ("loss=nll", "tied (p=1)"), ("loss=mse", "–")]
    assert (rows[1]["difference to best"], rows[1]["best won"]) == ("+0.0000 [+0.0000, +0.0000]", "0/2")
    assert rows[2]["best val acc"] == "0.7000" and rows[2]["interval"] == "one run"  # its value, no interval
    assert rows[2]["test"] == "–"


def test_epochs_to_target_of_a_group_averages_the_seeds_that_reached_it_and_counts_the_others(tmp_path):
    for num, (seed, history) in enumerate([(0, [(1, 0.99), (1, 1.0)]), (1, [(1, 0.5), (1, 0.96)]),
                                           (2, [(1, 0.5), (1, 0.6)])]):
        make_job(tmp_path, num, ["loss=ce", f"seed={seed}"], best_val=history[-1][1], test_acc=0.9, history=history)
    text, _ = summarize(tmp_path)
    [row] = table_rows(text, "## Seed groups")
    assert dict(zip(header(text, "## Seed groups"), row))["epochs to target"] == "1.5 [1.0, 2.0], never in 1"
    [group] = csv.DictReader((tmp_path / "summary_groups.csv").open())
    assert (group["epochs_to_target mean"], group["epochs_to_target n"], group["epochs_to_target never"]) == (
        "1.5", "2", "1")


def test_a_groups_curve_is_the_mean_over_its_seeds_with_their_range_as_band_and_each_seeds_line():
    histories = [[{"epoch": 1, "acc/val": 0.5}, {"epoch": 2, "acc/val": 0.8}],
                 [{"epoch": 1, "acc/val": 0.7}, {"epoch": 2, "acc/val": 0.9}],
                 [{"epoch": 1, "acc/val": 0.6}]]  # a shorter run: epoch 2 has two seeds
    curve = group_curves(histories)["acc/val"]
    assert curve.epochs == [1, 2] and curve.means == pytest.approx([0.6, 0.85])
    assert curve.lows == pytest.approx([0.5, 0.8]) and curve.highs == pytest.approx([0.7, 0.9])
    assert curve.runs == [([1, 2], [0.5, 0.8]), ([1, 2], [0.7, 0.9]), ([1], [0.6])] and not curve.log
    assert math.isnan(group_curves([histories[2]])["acc/val"].lows[0])  # one run: no band


def test_a_loss_curve_on_a_log_axis_has_the_geometric_mean_and_a_band_of_the_logs():
    histories = [[{"epoch": 1, "loss/val": value}] for value in (0.01, 0.1, 1.0, 10.0, 100.0)]
    curve = group_curves(histories, log_keys={"loss/val"})["loss/val"]
    assert curve.log and curve.means == pytest.approx([1.0])  # exp(mean of the logs)
    assert 0.01 <= curve.lows[0] < 1.0 < curve.highs[0] <= 100.0  # five seeds: a bootstrap interval of the logs


def test_a_sweep_with_a_seed_that_failed_to_learn_prints_no_interval_outside_the_metrics_range(tmp_path):
    # loss=l1 learns in two seeds and stays at chance in one: a Student-t interval ran from -0.38 to 1.68
    for num, (loss, seed, acc, nll) in enumerate([("ce", 0, 0.97, 0.1), ("ce", 1, 0.98, 0.09), ("ce", 2, 0.96, 0.12),
                                                  ("l1", 0, 0.95, 2.0), ("l1", 1, 0.10, 300.0), ("l1", 2, 0.90, 1.5)]):
        make_job(tmp_path, num, [f"loss={loss}", f"seed={seed}"], best_val=acc, test_acc=acc,
                 history=[(nll, acc / 2), (nll, acc)], **{result_key(TEST, NLL): nll, result_key(TEST, ECE): acc / 3})
    text, _ = summarize(tmp_path)
    rows = {row[1]: dict(zip(header(text, "## Seed groups"), row)) for row in table_rows(text, "## Seed groups")}
    bounds = lambda cell: [float(x) for x in re.findall(r"-?\d+\.\d+", cell)]
    for title, low, high in (("best val acc", 0, 1), ("test acc", 0, 1), ("test ECE", 0, 1), ("test NLL", 0, 1e9)):
        assert all(low <= x <= high for row in rows.values() for x in bounds(row[title])), title
    assert rows["loss=l1"]["best val acc"] == "0.6500 [0.1000, 0.9500]"
    groups = csv.DictReader((tmp_path / "summary_groups.csv").open())
    assert all(0 <= float(g[f"{BEST.best_key} {part}"]) <= 1 for g in groups for part in ("low", "high"))
    # the bands of curves.png: validation accuracy in [0, 1], the validation loss (log axis) above 0
    curves = group_curves([[{"epoch": 1, "acc/val": a, "loss/val": n}] for a, n in ((0.95, 2.0), (0.1, 300.0),
                                                                                    (0.9, 1.5))],
                          log_keys={"loss/val"})
    assert 0 <= curves["acc/val"].lows[0] and curves["acc/val"].highs[0] <= 1
    assert curves["loss/val"].lows[0] == pytest.approx(1.5) and curves["loss/val"].highs[0] == pytest.approx(300)
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_a_groups_seeds_merge_into_one_reliability_curve_by_count(tmp_path):
    runs = [calibration([None, 0.7, 0.9], [None, 0.5, 1.0], [0, 2, 6]),
            calibration([None, 0.6, 0.95], [None, 1.0, 0.9], [0, 2, 4])]
    merged = merge_calibration(runs)
    assert merged["count"] == [0, 4, 10] and merged["confidence"][0] is None and merged["accuracy"][0] is None
    assert merged["confidence"][1:] == pytest.approx([0.65, (0.9 * 6 + 0.95 * 4) / 10])
    assert merged["accuracy"][1:] == pytest.approx([0.75, (6 + 0.9 * 4) / 10])
    for seed, run in enumerate(runs):
        make_job(tmp_path, seed, ["loss=ce", f"seed={seed}"], best_val=0.9, test_acc=0.9, **{CALIBRATION: run})
    make_job(tmp_path, 2, ["loss=mse", "seed=0"], best_val=0.8, test_acc=0.8)  # an older run: no calibration
    text, _ = summarize(tmp_path)
    png = (tmp_path / "reliability_overlay.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and "(reliability_overlay.png)" in text


def test_a_sweep_without_seeds_has_no_seed_table(loss_sweep):
    text, _ = summarize(loss_sweep)
    assert "## Seed groups" not in text and "## Every job" not in text


def test_jobs_are_found_in_nested_dirs_in_launch_order(tmp_path):
    make_job(tmp_path, 1, ["data.root=a/b"], best_val=0.5, test_acc=0.5)  # a "/" in an override nests the folder
    make_job(tmp_path, 0, ["data.root=z"], best_val=0.5, test_acc=0.5)
    assert [job.overrides for job in read_jobs(tmp_path)] == [["data.root=z"], ["data.root=a/b"]]


def summarize_script(sweep_dir, *args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "summarize.py"), str(sweep_dir), *args],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def test_summarize_script_rewrites_the_summary_of_an_interrupted_sweep(loss_sweep):
    result = summarize_script(loss_sweep)
    assert result.returncode == 0, result.stderr
    assert "| 1 | loss=nll | done |" in result.stdout and "| 3 | loss=bce | unfinished |" in result.stdout
    assert {"summary.md", "summary.csv", "curves.png"} <= {p.name for p in loss_sweep.iterdir()}


def test_summarize_script_says_what_to_pass_when_the_folder_has_no_jobs(tmp_path):
    result = summarize_script(tmp_path)
    assert result.returncode == 2 and "has no job folders" in result.stderr


def test_summarize_script_takes_another_target(loss_sweep):
    result = summarize_script(loss_sweep, "--target", "0.5")
    assert result.returncode == 0, result.stderr
    assert "`sweep.target=0.5`" in result.stdout
    result = summarize_script(loss_sweep, "--target", "2")
    assert result.returncode == 2 and result.stderr.startswith("error: sweep.target=2.0 is invalid")


def test_compare_script_runs_two_sweeps_through_the_cli_and_writes_the_page_from_them(tmp_path):
    out, runs = tmp_path / "docs" / "compare.md", tmp_path / "runs"
    args = ["--no-regression", "--no-optimizers", "--no-imbalance", "--losses", "ce,nll", "--seeds", "2", "--lr", "0.05",
            "--noisy",
            "data.source.noise=3.0", "--set", *TINY, "trainer.epochs=2", "--out", str(out), "--runs", str(runs)]
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "compare.py"), *args], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    page = out.read_text()
    assert "## Clean labels" in page and "## With `data.source.noise=3.0`" in page and "## Clean against noisy" in page
    assert "train -m loss=ce,nll seed=range(2) optimizer.lr=0.05 data.source.noise=3.0" in page  # the command it ran
    for section in ("## Clean labels", "## With `data.source.noise=3.0`"):
        verdicts = [(row[1], row[2], row[5]) for row in table_rows(page, section)]
        assert verdicts == [("loss=ce", "2/2", "best"), ("loss=nll", "2/2", "tied (p=1)")]
    # the prose states what the runs show: ce and nll are one function
    assert page.count("`nll` (the two written out) gave exactly the same test accuracy in every seed") == 2
    compared = [line.split(" | ")[0] for line in page.split("## Clean against noisy")[1].splitlines()
                if line.startswith("| `")]
    assert compared == ["| `ce`", "| `nll`"]
    pictures = sorted(p.name for p in (out.parent / "compare").iterdir())
    assert pictures == ["clean_curves.png", "clean_reliability_overlay.png", "noisy_curves.png",
                        "noisy_reliability_overlay.png"]
    assert "](compare/clean_curves.png)" in page
    # the sweeps are kept: the page can be rewritten from them, and a second run never writes into them
    again = subprocess.run([sys.executable, str(REPO / "scripts" / "compare.py"), *args], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "--reuse" in again.stderr
    out.unlink()
    reused = subprocess.run([sys.executable, str(REPO / "scripts" / "compare.py"), *args, "--reuse"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert reused.returncode == 0 and "## Clean against noisy" in out.read_text()


# --- real sweeps ----------------------------------------------------------------------------------------------


def sweep_dirs(cwd):
    """The sweep dirs under cwd that have a summary (the Optuna sweeper writes no multirun.yaml)."""
    return sorted(p.parent for p in (Path(cwd) / "outputs" / "multirun").glob("*/*/summary.md"))


def test_a_diverging_job_is_recorded_the_other_completes_and_the_sweep_exits_1(tmp_path):
    result = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "optimizer=sgd", "optimizer.lr=0.1,1e30")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: 1 of 2 jobs diverged" in result.stderr
    [sweep] = sweep_dirs(tmp_path)
    statuses = {p.parent.name.split("optimizer.lr=")[1].split(",")[0]: json.loads(p.read_text())
                for p in sweep.glob("*/status.json")}
    assert statuses["0.1"]["status"] == "done" and statuses["0.1"]["wall_time_s"] > 0
    assert statuses["1e+30"]["status"] == "diverged"
    assert statuses["1e+30"]["error"].startswith("the training loss became nan in epoch 1 by step")
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(r["rank"], r["status"]) for r in rows] == [("1", "done"), ("2", "diverged")]
    assert "optimizer.lr=0.1" in rows[0]["overrides"] and float(rows[0]["best/val_acc"]) > 0.5  # chance is 0.25
    # the table is printed, and written with the picture
    assert "| 1 | optimizer.lr=0.1 | done |" in result.stdout
    assert "| 1 | optimizer.lr=0.1 | done |" in (sweep / "summary.md").read_text()
    assert (sweep / "curves.png").stat().st_size > 10_000


def test_a_seed_range_sweep_prints_intervals_and_tie_marks_and_writes_their_numbers(tmp_path):
    result = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=2", "loss=ce,nll", "seed=range(3)")
    assert result.returncode == 0, result.stderr[-2000:]
    [sweep] = sweep_dirs(tmp_path)
    assert len(list(sweep.glob("*/metrics.json"))) == 6
    assert "## Seed groups (mean [interval]; paired by seed against the best)" in result.stdout
    assert "`sweep.target=0.95` ×" in result.stdout  # conf/config.yaml's default reaches the callback
    rows = table_rows(result.stdout, "## Seed groups")
    # ce and nll compute the same function: every seed gives both the same numbers, so they tie exactly
    assert [(row[1], row[2], row[3], row[4], row[5]) for row in rows] == [
        ("loss=ce", "3/3", "0 1 2", "range of 3", "best"), ("loss=nll", "3/3", "0 1 2", "range of 3", "tied (p=1)")]
    # paired by seed: a difference of exactly 0 in every seed, which the best won in none
    assert (rows[1][6], rows[1][7], rows[1][8]) == ("paired t, 3 seeds", "+0.0000 [+0.0000, +0.0000]", "0/3")
    assert re.fullmatch(r"0\.\d{4} \[0\.\d{4}, (0\.\d{4}|1\.0000)\]", rows[0][9])  # best val acc: mean [range]
    groups = list(csv.DictReader((sweep / "summary_groups.csv").open()))
    assert [(g["group"], g[f"{BEST.best_key} n"], g["vs_best"]) for g in groups] == [
        ("loss=ce", "3", "best"), ("loss=nll", "3", "tied")]
    assert float(groups[0][f"{BEST.best_key} low"]) <= float(groups[0][f"{BEST.best_key} mean"])
    assert "written in" in result.stdout and "summary_groups.csv" in result.stdout


def test_a_bad_sweep_target_stops_the_sweep_before_any_job_in_one_sentence(tmp_path):
    result = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "seed=0,1", "sweep.target=0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: sweep.target=0 is invalid: it is the fraction of the sweep's best validation accuracy a job must "
        "reach, a number in (0, 1], e.g. sweep.target=0.95"]
    assert not list((tmp_path / "outputs").glob("multirun/*/*/*/metrics.json"))


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

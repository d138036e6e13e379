"""Run folders: unique names for runs and sweeps started in the same second, where a resumed run writes, the refusal
to reuse a run's folder or the user's own, folders the system refuses, what a refused run leaves behind (nothing),
and the records status.json and metrics.json."""
import hashlib
import json
import multiprocessing
import os
import shutil
import stat
import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import CONF, REPO, TINY, compose_config, run, run_cli
from trainer.errors import UserError
from trainer.run.interrupt import Interrupted
from trainer.run.rundir import (check_writable, claim_dir, home_of, place, register_resolvers, set_aside,
                                write_status)

EXACT = ["model=mlp", "model.hidden=[32]", "trainer.progress=false", "trainer.device=cpu", "data.batch_size=128"]


def test_claim_dir_gives_a_second_claim_of_the_same_folder_a_suffix(tmp_path):
    base = str(tmp_path / "multirun" / "2024-01-01" / "12-00-00")
    assert [claim_dir(base) for _ in range(3)] == [base, base + "_2", base + "_3"]


def test_processes_claiming_the_same_folder_at_once_all_get_their_own(tmp_path):
    base = str(tmp_path / "12-00-00")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        claimed = pool.map(claim_dir, [base] * 8)
    assert len(set(claimed)) == 8 and set(claimed) == {base} | {f"{base}_{i}" for i in range(2, 9)}


def test_run_and_sweep_dirs_are_claimed_through_unique_dir_registered_by_the_cli():
    register_resolvers()
    assert OmegaConf.has_resolver("unique_dir")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        hydra = compose(config_name="config", return_hydra_config=True).hydra
    assert OmegaConf.to_container(hydra.run)["dir"] == "${unique_dir:outputs/${oc.env:LOSSLAB_RUN_TIME,${now:%Y-%m-%d}/${now:%H-%M-%S}}}"
    assert OmegaConf.to_container(hydra.sweep)["dir"] == (
        "${unique_dir:outputs/multirun/${oc.env:LOSSLAB_RUN_TIME,${now:%Y-%m-%d}/${now:%H-%M-%S}}}")


def test_status_json_records_the_errors_first_line_and_wall_time(tmp_path):
    write_status(tmp_path, 12.34567, ValueError("a message wrapped\nover two lines\n\nTraceback and details"))
    assert json.loads((tmp_path / "status.json").read_text()) == {
        "status": "failed", "error": "a message wrapped over two lines", "error_type": "ValueError",
        "wall_time_s": 12.346}
    write_status(tmp_path, 1.0)
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "done"


def test_a_checkpoint_inside_a_run_folder_resumes_there_and_a_loose_one_in_the_new_folder(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    (tmp_path / "loose.pt").write_bytes(b"x")
    assert home_of(run_dir / "checkpoints" / "last.pt") == run_dir and home_of(tmp_path / "loose.pt") is None
    resume = place(compose_config([f"ckpt_path={run_dir / 'checkpoints' / 'last.pt'}"]), tmp_path / "new")
    assert (resume.run_dir, resume.continuing, resume.ours) == (run_dir, True, False)
    loose = place(compose_config([f"ckpt_path={tmp_path / 'loose.pt'}"]), tmp_path / "new")
    assert (loose.run_dir, loose.continuing, loose.ours) == (tmp_path / "new", False, True)
    assert place(compose_config(), tmp_path / "new").run_dir == tmp_path / "new"


def test_a_run_dir_holding_checkpoints_is_not_overwritten_without_resuming(tmp_path):
    run([*EXACT, "trainer.epochs=1"], tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(UserError, match=r"already holds a run's checkpoints: resume it with ckpt_path="):
        run([*EXACT, "trainer.epochs=1"], tmp_path)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before


def test_a_resumed_run_from_the_cli_writes_status_and_metrics_into_its_own_run_dir(tmp_path):
    first = run_cli(tmp_path, *EXACT, "trainer.epochs=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert first.returncode == 0, first.stderr
    resumed = run_cli(tmp_path, *EXACT, "trainer.epochs=2", f"ckpt_path={tmp_path}/run/checkpoints/last.pt")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "done"
    assert not (tmp_path / "outputs").exists()  # the outputs/DATE/TIME it did not need is not left behind
    missing = run_cli(tmp_path, *EXACT, f"ckpt_path={tmp_path}/nowhere/last.pt", f"hydra.run.dir={tmp_path / 'third'}")
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert list((tmp_path / "third").iterdir()) == []  # refused before any work: nothing behind (issue 23 #11)


def test_attempts_set_aside_are_numbered(tmp_path):
    for attempt in (1, 2):
        (tmp_path / "status.json").write_text(str(attempt))
        assert set_aside(tmp_path) == tmp_path / "set_aside" / str(attempt)
    assert (tmp_path / "set_aside" / "2" / "status.json").read_text() == "2"



# --- folders a run does not own, and folders the system refuses (issue 23 #4, #5, #11) -------------------------------

def snapshot(folder):
    """Every file under `folder` with its bytes' hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_users_own_folder_as_the_run_folder_is_refused_and_nothing_of_theirs_changes(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train.log").write_text("my own log\n")
    (mine / "notes.txt").write_text("my notes")
    (mine / "reliability.png").write_bytes(b"my picture")
    before = snapshot(mine)
    result = run_cli(tmp_path, *TINY, "trainer.epochs=1", "hydra.run.dir=mine")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {mine} holds files losslab did not write (notes.txt, reliability.png, train.log): a run writes only "
        "into a folder of its own, so point hydra.run.dir at a new or empty folder"]
    assert snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == [
        "notes.txt", "reliability.png", "train.log"]


@pytest.mark.parametrize("mode", ["train", "eval", "lr_find"])
def test_no_mode_writes_into_a_folder_holding_the_users_files(tmp_path, mode):
    (tmp_path / "data.csv").write_text("x")
    with pytest.raises(UserError, match=r"holds files losslab did not write \(data.csv\)"):
        place(compose_config([f"mode={mode}"]), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["data.csv"]


def unprivileged(cwd, *args):
    """`python -m trainer ARGS` without root's power over file permissions (the tests may run as root, who writes into
    read-only folders): setpriv drops it from the child's capabilities."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root writes into read-only folders, and setpriv is missing to drop that power")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    return subprocess.run([*prefix, sys.executable, "-m", "trainer", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    yield folder
    folder.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("case", ["under a read-only folder", "under a regular file", "a name too long",
                                  "started in a read-only folder", "a sweep under a read-only folder"])
def test_a_folder_the_system_refuses_is_one_sentence_naming_it_and_exit_2(tmp_path, read_only, case):
    (tmp_path / "file.txt").write_text("in the way")
    long_name = "x" * (os.pathconf(tmp_path, "PC_NAME_MAX") + 1)
    cwd, args, says = {
        "under a read-only folder": (tmp_path, [f"hydra.run.dir={read_only}/run"],
                                     f"{read_only}/run cannot be written (Permission denied): point hydra.run.dir at a "
                                     "folder you can write to"),
        "under a regular file": (tmp_path, [f"hydra.run.dir={tmp_path}/file.txt/run"],
                                 f"{tmp_path}/file.txt/run cannot be written (Not a directory): {tmp_path}/file.txt is "
                                 "a file, not a folder: move it, or point hydra.run.dir elsewhere"),
        "a name too long": (tmp_path, [f"hydra.run.dir={tmp_path}/{long_name}"],
                            f"{tmp_path}/{long_name} cannot be written (File name too long): a name in it is longer "
                            "than the file system allows: choose shorter names for hydra.run.dir"),
        "started in a read-only folder": (read_only, [], f"{read_only}/outputs/"),
        "a sweep under a read-only folder": (tmp_path, ["-m", "loss=ce,nll", f"hydra.sweep.dir={read_only}/sweep"],
                                             f"{read_only}/sweep cannot be written (Permission denied): point "
                                             "hydra.sweep.dir at a folder you can write to"),
    }[case]
    result = unprivileged(cwd, *args, *TINY, "trainer.epochs=1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.splitlines()) == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {says}"), result.stderr
    if case == "started in a read-only folder":
        assert f"(Permission denied: {read_only}/outputs): point hydra.run.dir at a folder you can write to" in line
    assert list(read_only.iterdir()) == [] and (tmp_path / "file.txt").read_text() == "in the way"


def test_a_file_in_the_way_of_the_checkpoints_folder_is_one_sentence_naming_it(tmp_path):
    (tmp_path / "checkpoints").write_text("not a folder")
    with pytest.raises(UserError, match=rf"^{tmp_path}/checkpoints cannot be written \(File exists\): "
                                        rf"{tmp_path}/checkpoints is a file, not a folder: move it"):
        check_writable(tmp_path / "checkpoints")


def test_a_config_mistake_leaves_nothing_behind_where_train_started(tmp_path):
    earlier = tmp_path / "outputs" / "2020-01-01" / "10-00-00"
    earlier.mkdir(parents=True)
    (earlier / "metrics.json").write_text("{}")
    result = run_cli(tmp_path, *TINY, "optimizer.lr=0")
    assert result.returncode == 2 and result.stderr.startswith("error: optimizer.lr=0 is invalid")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "outputs", "outputs/2020-01-01", "outputs/2020-01-01/10-00-00", "outputs/2020-01-01/10-00-00/metrics.json"]
    alone = tmp_path / "alone"
    alone.mkdir()
    assert run_cli(alone, *TINY, "data.batch_size=0").returncode == 2
    assert list(alone.iterdir()) == []  # not even outputs/


def test_a_mistake_found_while_the_data_are_read_leaves_nothing_in_a_named_folder(tmp_path):
    with pytest.raises(UserError, match=r"data.root=.*nowhere does not exist"):
        run(["data=image_folder", f"data.root={tmp_path / 'nowhere'}", "model=mlp", "trainer.progress=false"],
            tmp_path / "run")
    assert not (tmp_path / "run").exists() or list((tmp_path / "run").iterdir()) == []


def test_the_same_command_again_reuses_the_folder_of_its_attempt_that_left_no_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, "trainer.epochs=1"]
    (run_dir / ".hydra").mkdir(parents=True)  # an attempt stopped before its first checkpoint (test_interrupt.py)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(args))
    (run_dir / "train.log").write_text("the attempt's log")
    write_status(run_dir, 1.0, Interrupted(15))
    with pytest.raises(UserError, match="holds another run's files"):  # another command: refused
        place(compose_config(args), run_dir, [*args, "seed=1"])
    metrics = run(args, run_dir)
    assert metrics["epochs"] == 1 and (run_dir / "checkpoints" / "last.pt").is_file()
    assert (run_dir / "set_aside" / "1" / "train.log").read_text() == "the attempt's log"
    assert json.loads((run_dir / "set_aside" / "1" / "status.json").read_text())["status"] == "stopped"
    with pytest.raises(UserError, match="already holds a run's checkpoints"):  # done now: never again
        run(args, run_dir)


def test_a_folder_whose_status_json_is_not_losslabs_is_refused_in_one_sentence_and_left_as_it_was(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "status.json").write_text("my notes")
    with pytest.raises(UserError, match=r"mine/status.json is not a file losslab wrote \(it holds no JSON object\)"):
        run([*EXACT, "trainer.epochs=1"], tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["status.json"]
    assert (tmp_path / "mine" / "status.json").read_text() == "my notes"


def test_starting_train_in_a_folder_that_was_removed_is_one_sentence(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(["sh", "-c", f"mkdir gone && cd gone && rmdir ../gone && exec {sys.executable} -m trainer"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: the folder train was started in no longer exists")

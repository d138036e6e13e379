"""Ctrl-C and kill: a real signal lets the step finish, saves last.pt, exits 128 + the signal number, and the run
resumes from it; a signal outside the epochs (the images being decoded, the final test) stops at once, with a
status and one line saying what to run next."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, TINY, run, run_cli
from tests.datafiles import write_pngs
from trainer.run import checkpoint
from trainer.run.checkpoint import Progress
from trainer.run.interrupt import Interrupted

EXACT = ["model=mlp", "model.dropout=0.3", "model.hidden=[32]", "trainer.progress=false", "trainer.device=cpu"]


def test_interrupted_names_the_signal_the_checkpoint_and_the_exit_status(tmp_path):
    last = tmp_path / "last.pt"
    last.write_bytes(b"state")
    stop = Interrupted(signal.SIGINT, last)
    assert stop.exit_code == 130 and str(stop).startswith("stopped by SIGINT") and f"ckpt_path={last}" in str(stop)
    without = Interrupted(signal.SIGTERM, tmp_path / "never_written.pt")
    assert without.exit_code == 143 and str(without) == (
        "stopped by SIGTERM: it had written no checkpoint, so nothing is lost: run the same command again")


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_real_signal_finishes_the_step_saves_last_and_exits_128_plus_signal(tmp_path, signum, code):
    run_dir = tmp_path / "run"
    args = [*EXACT, "data=synthetic", "data.source.num_samples=4000", "data.batch_size=8", "trainer.epochs=30"]
    process = subprocess.Popen([sys.executable, "-m", "trainer", *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    progress = Progress.from_state(checkpoint.load(run_dir / "checkpoints" / "last.pt"))
    assert 1 <= progress.epoch < 30
    resumed = run([*args[:-1], f"trainer.epochs={progress.epoch + 1}", f"ckpt_path={run_dir}/checkpoints/last.pt"],
                  tmp_path)
    assert len(resumed["history"]) == progress.epoch + 1


# A child `train` whose `target` (module, attribute of it) blocks once reached, after saying so on stdout: the signal
# then arrives exactly there, however loaded the machine is.
BLOCKING = """
import sys, time
import importlib
module, name = sys.argv.pop(1), sys.argv.pop(1)
def blocking(*args, **kwargs):
    print("BLOCKED", flush=True)
    time.sleep(600)
owner = importlib.import_module(module)
*path, name = name.split(".")
for part in path:
    owner = getattr(owner, part)
setattr(owner, name, blocking)
from trainer.cli import main
main()
"""


def stopped_at(target, signum, cwd, *args):
    """Run `train ARGS` until it reaches `target`, send it `signum`; returns (exit status, stderr)."""
    process = subprocess.Popen([sys.executable, "-c", BLOCKING, *target, *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    for line in process.stdout:
        if line.strip() == "BLOCKED":
            break
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_images_are_decoded_leaves_a_status_and_the_same_command_runs_again(tmp_path, signum):
    write_pngs(tmp_path / "images", ["cat", "dog", "owl"], 6)
    args = ["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=8", "data.cache=true",
            "data.num_workers=0", "model=mlp", "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu",
            f"hydra.run.dir={tmp_path / 'run'}"]
    code, stderr = stopped_at(("PIL.ImageFile", "ImageFile.load"), signum, tmp_path, *args)
    name = signal.Signals(signum).name
    assert code == 128 + signum and stderr.splitlines() == [
        f"stopped by {name}: it had written no checkpoint, so nothing is lost: run the same command again"], stderr
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "stopped"
    again = run_cli(tmp_path, *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "done"
    assert json.loads((tmp_path / "run" / "set_aside" / "1" / "status.json").read_text())["status"] == "stopped"


def test_a_signal_during_the_final_test_leaves_a_status_and_the_run_finishes_from_last_pt(tmp_path):
    args = [*TINY, "trainer.epochs=1", f"hydra.run.dir={tmp_path / 'run'}"]
    code, stderr = stopped_at(("trainer.run.train", "draw_test"), signal.SIGINT, tmp_path, *args)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert code == 130 and stderr.splitlines() == [
        f"stopped by SIGINT: {last} holds the last finished step; continue with the same overrides and "
        f"ckpt_path={last}"], stderr
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "stopped"
    assert not (tmp_path / "run" / "metrics.json").exists()
    finished = run_cli(tmp_path, *args, f"ckpt_path={last}")
    assert finished.returncode == 0, finished.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and len(metrics["history"]) == 1 and "test/acc" in metrics

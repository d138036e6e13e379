"""Ctrl-C and kill: a real signal lets the step finish, saves last.pt, exits 128 + the signal number, and the run
resumes from it."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, run
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

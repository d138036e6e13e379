"""train.log holds the run: every epoch line and the result of a default run, as the console shows them; warnings;
a failed run's error with its traceback, while the console shows one sentence."""
import os
import re
import subprocess
import sys
import warnings

from tests.conftest import REPO, run_cli
from tests.datafiles import write_pngs
from trainer.logs import RunLog, log


def only_log(tmp_path):
    [path] = (tmp_path / "outputs").glob("*/*/train.log")
    return path.read_text()


def test_the_default_runs_log_holds_its_epoch_lines_and_the_test_line(tmp_path):
    result = run_cli(tmp_path, "trainer.progress=false", "trainer.epochs=3")  # the default run (digits, small_cnn)
    assert result.returncode == 0, result.stderr[-2000:]
    text = only_log(tmp_path)
    epochs = re.findall(r"\] epoch (\d+)/3  train loss", text)
    assert epochs == ["1", "2", "3"]
    [test_line] = [line for line in text.splitlines() if "] test acc " in line]
    assert test_line.split("] ", 1)[1] in result.stdout  # the console shows the same lines, without the time
    assert result.stdout.count("/3  train loss") == 3


def test_a_failed_runs_log_holds_the_error_and_its_traceback_the_console_one_sentence(tmp_path):
    """A run that fails once it has begun (a file it cannot decode, met in the first epoch: data.cache=false); a
    config mistake refused before any work leaves no log at all (tests/run/test_rundir.py)."""
    write_pngs(tmp_path / "images", ["cat", "dog"], 6)
    broken = tmp_path / "images" / "dog" / "0.png"
    broken.write_bytes(broken.read_bytes()[:60])  # its header reads, its pixels do not
    result = run_cli(tmp_path, "data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=8",
                     "data.cache=false", "model=mlp", "trainer.epochs=1", "trainer.progress=false",
                     "trainer.device=cpu", "data.num_workers=0")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {broken} cannot be read as an image")
    text = only_log(tmp_path)
    assert f"[ERROR] run failed: {broken} cannot be read" in text and "Traceback (most recent call last)" in text


def test_a_warning_during_a_run_goes_to_its_log_and_to_the_console(tmp_path, capsys):
    run_log = RunLog(tmp_path / "train.log").start()
    try:
        log.info("epoch 1/1")
        warnings.warn("a user-visible warning", UserWarning)
    finally:
        run_log.stop()
    text = (tmp_path / "train.log").read_text()
    assert "epoch 1/1" in text and "a user-visible warning" in text
    assert "a user-visible warning" in capsys.readouterr().err


def test_the_console_lines_stop_quietly_when_the_reader_goes_away(tmp_path):
    """`train | head -3`: once the pipe is closed, the run's later lines are not a traceback each; train.log keeps
    them all."""
    code = ("import sys; from trainer.logs import log\n"
            "for i in range(400): log.info('line %d ' % i + 'x' * 200)\n")
    reader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    reader.stdout.readline()
    reader.stdout.close()  # as head does after its lines
    stderr = reader.stderr.read().decode()
    reader.wait()
    assert "Logging error" not in stderr and "Traceback" not in stderr.split("Exception ignored")[0]

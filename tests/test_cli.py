"""The `train` command as a user runs it: a subprocess, from a directory that is not the repo."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, TINY, run_cli

QUICK = ["trainer.epochs=2", "trainer.progress=false"]


def test_train_then_eval_the_best_checkpoint_from_another_directory(tmp_path):
    run_dir, eval_dir = tmp_path / "run", tmp_path / "eval"
    trained = run_cli(tmp_path, *QUICK, f"hydra.run.dir={run_dir}")
    assert trained.returncode == 0, trained.stderr
    lines = trained.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    [result] = [line for line in lines if line.startswith("test acc ")]
    assert result.endswith(f"-> {run_dir}") and lines[-1].startswith("time ")  # then where the time went
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["test/acc"] > 0.5  # chance is 0.1
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()

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
    ce, nll = (json.loads((sweep / f"loss={loss},trainer.epochs=1" / "metrics.json").read_text())
               for loss in ("ce", "nll"))
    assert ce["test/acc"] > 0.3  # chance is 0.1
    # ce is LogSoftmax + NLL: same seed, same data, same updates
    assert ce["test/loss"] == pytest.approx(nll["test/loss"], rel=1e-4)


@pytest.mark.parametrize("overrides,says", [
    (["loss=nope"], "Could not find 'loss/nope'"),
    (["optimizer.lr=0"], "error: optimizer.lr=0 is invalid: the learning rate must be a number > 0"),
    (["data.num_classes=5"], "set data.num_classes=10"),
])
def test_bad_input_from_the_cli_exits_nonzero_with_one_sentence_before_training(tmp_path, overrides, says):
    result = run_cli(tmp_path, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_cli_prints_a_data_error_from_a_target_as_one_sentence(tmp_path):
    result = run_cli(tmp_path, "data=mnist", f"data.root={tmp_path}", "data.download=false",
                     f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: data.root={tmp_path} holds no MNIST and data.download=false: "
                                     "set data.download=true or point data.root at a folder that holds it")


def test_single_run_with_a_diverging_loss_exits_2_with_one_sentence_and_status_json(tmp_path):
    result = run_cli(tmp_path, *TINY, "trainer.epochs=1", "optimizer=sgd", "optimizer.lr=1e30")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: the training loss became nan in epoch 1 by step ")
    assert "(learning rate 1e+30): lower optimizer.lr or pick another loss; no checkpoint was written" in line
    [status] = (tmp_path / "outputs").glob("*/*/status.json")
    assert json.loads(status.read_text())["status"] == "diverged"


def test_help_does_not_import_torch(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import sys, trainer.cli; print('torch' in sys.modules)"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "False", probe.stderr


HELP_PROBE = """
import sys
from trainer.cli import main
sys.argv = ["train", *sys.argv[1:], "--help"]
try:
    main()
except SystemExit as exit:
    print(f"exit {exit.code}, torch loaded: {'torch' in sys.modules}")
"""


def test_help_says_what_train_does_its_modes_groups_and_main_keys_without_importing_torch(tmp_path):
    result = subprocess.run([sys.executable, "-c", HELP_PROBE, "data=iris"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = result.stdout.splitlines()
    assert lines[-1] == "exit 0, torch loaded: False", result.stderr
    assert lines[0].startswith("train: see what a loss, an optimizer or a frozen pretrained backbone does")
    for mode in ("train", "eval", "lr_find"):
        assert any(line.startswith(f"  {mode} ") for line in lines), mode
    groups = sorted(p.name for p in (REPO / "conf").iterdir() if p.is_dir() and p.name != "hydra")
    for group in groups:  # one line saying what it is, one listing its options as conf/ holds them
        assert any(line.startswith(f"  {group} ") for line in lines), group
        options = sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in lines
    assert "  data.batch_size         batch size (16)" in lines  # the values this command line gives: iris'
    assert "now data=iris model=small_cnn" in result.stdout and not (tmp_path / "outputs").exists()


EXIT_PROBE = """
import atexit, sys, threading, time
from pathlib import Path
from trainer.cli import exit_now
out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
print("buffered on stdout", end="")  # no newline: still in the buffer when exit_now is called
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
exit_now({"none": None, "text": "stopped: a reason", "thread": 0, "seven": 7}.get(sys.argv[2], 0))
"""


@pytest.mark.parametrize(("status", "code", "stderr"), [("none", 0, ""), ("seven", 7, ""),
                                                         ("text", 1, "stopped: a reason\n"), ("thread", 0, "")])
def test_the_fast_exit_runs_atexit_flushes_and_waits_for_threads(tmp_path, status, code, stderr):
    """`train` ends without the interpreter's teardown, but with everything that teardown would have done for it: the
    atexit functions, the buffered output, a running non-daemon thread's end; and SystemExit's meaning of its code."""
    result = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(tmp_path), status], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (result.returncode, result.stdout, result.stderr) == (code, "buffered on stdout", stderr)
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").is_file() == (status == "thread")

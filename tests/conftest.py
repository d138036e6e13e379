"""What every test file shares: composing the real config, listing the options of a group, and running the `train`
command as a user does (a subprocess, from a directory that is not the repo)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from trainer.config import config_dir

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per test process (and per `train` it starts): the workers already use every core, and torch's own
    # threads on top of them would fight over the same cores (the suite then takes longer, not shorter).
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    import torch

    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CONF = config_dir()
# Shrinks any run to a second or two on a CPU: one epoch, no progress bars.
FAST = ["trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu"]
# Tiny synthetic data and an MLP: a run takes well under a second after imports.
TINY = ["data=synthetic", "data.source.num_samples=200", "data.channels=1", "data.image_size=8",
        "data.num_classes=4", "model=mlp", "trainer.progress=false", "trainer.device=cpu"]


def learned(history):
    """A run's per-epoch history without its timing (perf/...: seconds and samples per second), which no two runs
    share: what a resumed or repeated run must reproduce bit for bit."""
    from trainer.metrics import PERF

    return [{key: value for key, value in row.items() if key not in PERF} for row in history]


def compose_config(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def options(group):
    """Every option of a config group, read from conf/ so a new YAML file is tested the day it is added."""
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def run(overrides, run_dir):
    """What `train OVERRIDES` does inside Hydra's job, called directly: check the config, run its mode."""
    from trainer.cli import dispatch

    return dispatch(compose_config(overrides), run_dir, overrides)


def run_cli(cwd, *args, env=None, timeout=300):
    """`python -m trainer ARGS` in `cwd`, with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def cfg_factory():
    return lambda *overrides: compose_config([*FAST, *overrides])

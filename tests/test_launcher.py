"""Clusters: Hydra's submitit launcher plugin (optional extra `losslab[slurm]`) runs each job of a sweep as its own
submitit job; submitit_local runs them as local processes, which is what a test can check."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_submitit_local_runs_a_two_job_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    command = [sys.executable, "-m", "trainer", "--multirun", "hydra/launcher=submitit_local",
               "hydra.launcher.timeout_min=5", "data=iris", "model=mlp", "trainer.epochs=1", "trainer.progress=false",
               "trainer.device=cpu", "seed=0,1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted((tmp_path / "outputs" / "multirun").glob("*/*/*/metrics.json"))  # one dir per job, named
    assert [re.search(r"seed=(\d)", p.parent.name).group(1) for p in jobs] == ["0", "1"]  # by its overrides
    assert all(0 <= json.loads(p.read_text())["test/acc"] <= 1 for p in jobs)
    assert list((tmp_path / "outputs" / "multirun").glob("*/*/.submitit"))  # submitit's own job logs

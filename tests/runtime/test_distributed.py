"""torchrun: a 2-process gloo run on the CPU whose run dir looks like a single-process run's (the shards themselves:
tests/test_data.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

from trainer.run import checkpoint
from trainer.run.rundir import Place
from trainer.run.train import train

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/runtime/ is two below it
RUN = ["data=synthetic", "data.source.num_samples=300", "data.image_size=8", "data.batch_size=16", "model=mlp",
       "trainer.epochs=2", "trainer.progress=false", "trainer.device=cpu", "trainer.log_every_n_steps=2"]


def test_torchrun_with_two_cpu_processes_writes_one_run_dir_like_a_single_process_run(cfg_factory, tmp_path):
    # no hydra.run.dir: both ranks must still agree on one time-stamped run dir
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("LOSSLAB_RUN_TIME", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "trainer", *RUN]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = [p.parent for p in (tmp_path / "outputs").glob("*/*/.hydra")]
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    assert result.stdout.count("test acc") == 1  # only rank 0 prints
    single = train(cfg_factory(*RUN), Place(tmp_path / "single"))
    ddp = json.loads((run_dir / "metrics.json").read_text())
    assert ddp.keys() == single.keys() and len(ddp["history"]) == 2
    assert ddp["test/acc"] > 0.5  # chance is 0.1
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    single_state = checkpoint.load(tmp_path / "single" / "checkpoints" / "last.pt")
    assert state["model"].keys() == single_state["model"].keys()  # no DDP "module." prefix

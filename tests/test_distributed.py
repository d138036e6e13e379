"""torchrun: sharded loaders, and a 2-process gloo run on the CPU whose run dir looks like a single-process run's."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from trainer import checkpoint
from trainer.data import make_loader
from trainer.train import train

ROOT = Path(__file__).resolve().parents[1]
RUN = ["data=synthetic", "data.source.num_samples=300", "data.image_size=8", "data.batch_size=16", "model=mlp",
       "trainer.epochs=2", "trainer.progress=false", "trainer.device=cpu", "trainer.log_every_n_steps=2"]


def served(loader):
    return [int(i) for x, _ in loader for i in x]


def test_training_shards_cover_every_sample_and_take_equal_steps():
    data = TensorDataset(torch.arange(10), torch.zeros(10, dtype=torch.long))
    shards = [make_loader(data, 2, True, 0, seed=3, rank=rank, world_size=3) for rank in range(3)]
    assert [len(shard) for shard in shards] == [2, 2, 2]
    samples = [served(shard) for shard in shards]
    assert all(len(s) == 4 for s in samples)  # 10 samples padded to 12 by wrapping around
    assert set(sum(samples, [])) == set(range(10))


def test_evaluation_shards_split_exactly():
    data = TensorDataset(torch.arange(7), torch.zeros(7, dtype=torch.long))
    samples = [served(make_loader(data, 2, False, 0, seed=0, rank=rank, world_size=2)) for rank in range(2)]
    assert sorted(sum(samples, [])) == list(range(7))


class Numbers(Dataset):  # not in memory as tensors: served by a DataLoader
    def __len__(self):
        return 9

    def __getitem__(self, i):
        return torch.tensor(i), torch.tensor(0)


def test_dataloader_shards_use_a_distributed_sampler_for_training_and_exact_splits_for_evaluation():
    train_shards = [make_loader(Numbers(), 2, True, 0, seed=0, rank=rank, world_size=2) for rank in range(2)]
    assert [len(served(s)) for s in train_shards] == [5, 5]
    assert set(served(train_shards[0]) + served(train_shards[1])) == set(range(9))
    eval_shards = [make_loader(Numbers(), 2, False, 0, seed=0, rank=rank, world_size=2) for rank in range(2)]
    assert sorted(served(eval_shards[0]) + served(eval_shards[1])) == list(range(9))


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
    single = train(cfg_factory(*RUN), tmp_path / "single")
    ddp = json.loads((run_dir / "metrics.json").read_text())
    assert ddp.keys() == single.keys() and len(ddp["history"]) == 2
    assert 0 <= ddp["test/acc"] <= 1
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    single_state = checkpoint.load(tmp_path / "single" / "checkpoints" / "last.pt")
    assert state["model"].keys() == single_state["model"].keys()  # no DDP "module." prefix

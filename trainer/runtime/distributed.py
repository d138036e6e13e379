"""One run over several processes: `torchrun --nproc_per_node=N -m trainer ...`.

torchrun starts N copies of the CLI and gives each RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
Each copy joins one process group (gloo for CPU tensors, nccl for CUDA ones), trains its shard of the data on a
DistributedDataParallel model (gradients are averaged across ranks in backward), and sums its metrics with the
others'. Only rank 0 writes the run dir. Without torchrun every function here answers as for one process, so
the run calls them unconditionally.
"""
import os
from datetime import datetime

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

# The run dir's time stamp (conf/config.yaml reads it). Each rank composes the config itself; without one shared
# stamp, ranks that start in different seconds would write to different run dirs.
RUN_TIME_VAR = "LOSSLAB_RUN_TIME"


def start() -> None:
    """Join the process group and agree on rank 0's start time for the run dir. trainer.cli calls it before Hydra
    composes the config, when WORLD_SIZE > 1."""
    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # one GPU per process, before nccl touches any
    dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    stamp = [datetime.now().strftime("%Y-%m-%d/%H-%M-%S")]
    dist.broadcast_object_list(stamp, src=0, device=torch.device("cpu"))
    os.environ.setdefault(RUN_TIME_VAR, stamp[0])


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the one process that prints, draws progress bars and writes logs, checkpoints and metrics.json."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Under torchrun a CUDA run uses this process's own GPU, cuda:LOCAL_RANK."""
    if dist.is_initialized() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model to train: DistributedDataParallel under torchrun, else the model itself. Checkpoints and
    evaluation use the unwrapped model, so state_dict keys are the same as in a single-process run."""
    if not dist.is_initialized():
        return model
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def sum_across_ranks(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Sum each tensor in place over all ranks (a sync point: call it once per pass, not per step)."""
    if dist.is_initialized():
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensors


def wait_for_main() -> None:
    """Let the other ranks wait until rank 0 has written what they read next (the best checkpoint)."""
    if dist.is_initialized():
        dist.barrier()

"""Where and how a run computes: the device, the numeric precision, the memory format of images, and whether
progress bars show. These travel together (`Runtime`), so training, evaluation and the benchmarks agree."""
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from trainer.errors import UserError
from trainer.runtime import distributed
from trainer.runtime.precision import FULL, Precision
from trainer.runtime.speed import memory_format


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; any other name must be a device torch knows and this machine has."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"trainer.device={name} is not a device name: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name} but no CUDA GPU is available: use trainer.device=auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"trainer.device={name} but MPS is not available: use trainer.device=auto or cpu")
    return device


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: Precision = FULL
    memory_format: torch.memory_format = torch.preserve_format
    show_progress: bool = False

    def to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch on the device (non_blocking: with pinned memory the copy overlaps the step), images in the
        run's memory format."""
        return (x.to(self.device, non_blocking=True, memory_format=self.memory_format),
                y.to(self.device, non_blocking=True))


CPU = Runtime(torch.device("cpu"))


def build_runtime(cfg_trainer: DictConfig, data_shape: Sequence[int]) -> Runtime:
    """The Runtime a config asks for: trainer.device / precision / channels_last / progress. Under torchrun a CUDA
    run takes this process's own GPU, and only rank 0 draws bars."""
    device = distributed.local_device(resolve_device(cfg_trainer.device))
    return Runtime(device=device, precision=Precision(cfg_trainer.precision, device),
                   memory_format=memory_format(cfg_trainer.channels_last, data_shape),
                   show_progress=bool(cfg_trainer.progress) and distributed.is_main())

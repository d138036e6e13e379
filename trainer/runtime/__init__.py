"""Where and how a run computes: the device (`device`), numeric precision (`precision`), memory format and
torch.compile (`speed`), and several processes under torchrun (`distributed`). They travel together as a `Runtime`,
so training, evaluation and the benchmarks agree."""
from trainer.runtime import distributed
from trainer.runtime.device import CPU, Runtime, build_runtime, resolve_device
from trainer.runtime.precision import AUTOCAST_DTYPES, FULL, Precision
from trainer.runtime.speed import memory_format, prepare_model

__all__ = ["AUTOCAST_DTYPES", "CPU", "FULL", "build_runtime", "distributed", "memory_format", "Precision",
           "prepare_model", "resolve_device", "Runtime"]

"""Options that compute the same thing faster: `trainer.channels_last` and `trainer.compile`.

channels_last stores images as N,H,W,C, the layout tensor cores (and oneDNN on recent CPUs) run convolutions in;
it matters mostly on GPUs with mixed precision. torch.compile traces the model into fused kernels: the first steps
are slow (compilation), later ones faster, worth it for long runs.
"""
from collections.abc import Sequence

import torch
from torch import nn

from trainer.errors import UserError


def memory_format(channels_last: bool, shape: Sequence[int]) -> torch.memory_format:
    """The memory format for model and input batches; channels_last needs image data ([channels, height, width])."""
    if not channels_last:
        return torch.preserve_format
    if len(shape) != 3:
        raise UserError(f"trainer.channels_last=true needs image data, but data.shape={list(shape)}: "
                        "set trainer.channels_last=false")
    return torch.channels_last


def prepare_model(model: nn.Module, memory_format: torch.memory_format, compile: bool) -> nn.Module:
    """Convert the weights to `memory_format` and compile the forward pass in place, so the module (and its
    state_dict keys, which checkpoints use) stays the same object."""
    model.to(memory_format=memory_format)
    if compile:
        model.compile()
    return model

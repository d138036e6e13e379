"""Checkpoints: one dict with everything needed to evaluate or continue a run, as plain containers."""
import os
from pathlib import Path

import torch

from trainer.errors import UserError


def save(state, path):
    """Write atomically: a killed process leaves the previous file intact, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path, key="ckpt_path"):
    """Load with weights_only=True, so a checkpoint can never run code on load."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{key}={path} does not exist: point {key} at a checkpoint such as RUN_DIR/checkpoints/best.pt")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated, corrupt or unsafe files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{key}={path} could not be loaded as a safe checkpoint ({first_line})") from None

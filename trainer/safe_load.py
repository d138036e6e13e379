"""Reading a .pt file that someone may have handed the user (a checkpoint, a weights file): always with
`torch.load(..., weights_only=True)`, so only tensors and plain containers come out and loading can never run code;
a missing, truncated, corrupt or unsafe file is one sentence naming the key that pointed at it."""
from pathlib import Path

import torch

from trainer.config.paths import check_file
from trainer.errors import UserError, first_line


def load_pt(path: str | Path, *, key: str) -> object:
    """The content of the .pt file at `path`, on the CPU.

    Raises:
        UserError: the file is missing, a folder or unreadable, or torch cannot load it as tensors and plain
            containers (naming `key`).
    """
    path = check_file(path, key, fix=f"point {key} at a .pt file"
                      + (" such as RUN_DIR/checkpoints/best.pt" if key == "ckpt_path" else ""))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated, corrupt or unsafe files
        raise UserError(f"{key}={path} could not be loaded as a safe checkpoint ({first_line(error)})") from None
